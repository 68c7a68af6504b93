import { describeConformance } from "@nnspec/conformance/vitest";
import { createBackend } from "../src/index.ts";

// The one conformance suite, unchanged, against gpu.js in Node (webasm: f32 WebAssembly kernels).
await describeConformance("gpujs", () => createBackend());
