export * from "./checks.ts";
export * from "./runner.ts";
export * from "./suite.ts";
export * from "./report.ts";
export * from "./load-backend.ts";
export * from "./conformance-run.ts";
export * from "./errors.ts";
export { workbookChecks } from "./suites/workbook.ts";
