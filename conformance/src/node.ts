// The Node-only part of the judge: loading a backend by package name or path, a whole run with its report file.
export * from "./load-backend.ts";
export * from "./conformance-run.ts";
export { workbookChecks } from "./suites/workbook.ts";
export { runConformanceInBrowser, DEFAULT_BROWSER_TIMEOUT_S, type BrowserRunOptions } from "./browser-run/run.ts";
export { findChromium } from "./browser-run/chromium.ts";
export * from "./report-format.ts";
export * from "./report-file.ts";
export {
  startProcessBackend,
  BackendProcessError,
  RemoteError,
  DEFAULT_READY_TIMEOUT_S,
  type ProcessSpec,
  type RemoteBackend,
  type StartOptions,
} from "./protocol/client.ts";
export { serveBackend, type BackendFactory, type ServeIO } from "./protocol/server.ts";
export { startHost, nodeServerProcess, type BackendHost, type HostOptions } from "./protocol/hosts.ts";
export {
  commandProcess,
  isCommandSpecifier,
  parseCommandLine,
  splitCommandLine,
  type CommandLine,
} from "./protocol/command-line.ts";
