export * from "./line-chart.ts";
export * from "./atomic-write.ts";
export * from "./image-size.ts";
export * from "./bar-chart.ts";
