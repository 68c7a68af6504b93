// The judge, browser-safe: checks, suites, runner, report. Node-only parts (backend loading, the CLI run, reports on
// disk) are in "@nnspec/conformance/node"; the vitest adapter in "@nnspec/conformance/vitest".
export * from "./checks.ts";
export * from "./runner.ts";
export * from "./suite.ts";
export * from "./report.ts";
export * from "./errors.ts";
export { validatedBackend } from "./validate.ts";
