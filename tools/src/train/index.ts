export * from "./train-cnn.ts";
export * from "./checkpoint.ts";
export * from "./run-record.ts";
export * from "./train-plots.ts";
export * from "./progress.ts";
export * from "./cli-options.ts";
