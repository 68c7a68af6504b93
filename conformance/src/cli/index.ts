// The judge's commands, for a CLI that adds its own (this repository's tools register them beside theirs).
export { registerConformance, type ConformanceCommandOptions } from "./commands/conformance.ts";
export { registerNewBackend } from "./commands/new-backend.ts";
export { cleanupOnExit, handleInterrupts, reportError, runMain } from "./run-main.ts";
