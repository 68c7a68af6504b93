export * from "./run-sweep.ts";
export * from "./result.ts";
export * from "./analyze.ts";
export * from "./table.ts";
export { parseSweepCli, readConfigFile, sweepCliSchema, type SweepCliOptions } from "./cli-options.ts";
