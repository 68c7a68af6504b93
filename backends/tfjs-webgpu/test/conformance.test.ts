import { describeConformance } from "@nnspec/conformance/vitest";
import { createBackend } from "../src/index.ts";
import { describeTfjsWebgpu } from "./training-checks.ts";

// tfjs on WebGPU in Node (Dawn; Chromium's SwiftShader where there is no GPU): this package's own checks, then the
// one conformance suite, unchanged. One file, so both share tfjs's compiled shaders (SwiftShader compiles slowly).
describeTfjsWebgpu("node");
await describeConformance("tfjs-webgpu", () => createBackend());
