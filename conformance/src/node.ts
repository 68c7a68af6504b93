// The Node-only part of the judge: loading a backend by package name or path, a whole run with its report file.
export * from "./load-backend.ts";
export * from "./conformance-run.ts";
export { workbookChecks } from "./suites/workbook.ts";
export { runConformanceInBrowser, DEFAULT_BROWSER_TIMEOUT_S, type BrowserRunOptions } from "./browser-run/run.ts";
export { findChromium } from "./browser-run/chromium.ts";
export * from "./report-format.ts";
