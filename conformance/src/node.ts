// The Node-only part of the judge: loading a backend by package name or path, a whole run with its report file.
export * from "./load-backend.ts";
export * from "./conformance-run.ts";
export { workbookChecks } from "./suites/workbook.ts";
