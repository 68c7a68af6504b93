export * from "./workspace-backends.ts";
export * from "./sweep/index.ts";
export * from "./plot/index.ts";
export * from "./train/index.ts";
export * from "./data/index.ts";
