export * from "./load.ts";
export * from "./table.ts";
export * from "./charts.ts";
