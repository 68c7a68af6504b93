export * from "./idx.ts";
export * from "./files.ts";
export * from "./download.ts";
export * from "./mnist.ts";
export * from "./augment.ts";
