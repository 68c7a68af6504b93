import { describeConformance } from "@nnspec/conformance/vitest";
import { createBackend } from "../src/index.ts";
import { describeTfjsWebgpu } from "./training-checks.ts";

// tfjs on WebGPU in headless Chromium (vitest "browser" project; --enable-unsafe-webgpu, SwiftShader without a GPU):
// this package's own checks, then the one conformance suite, unchanged.
describeTfjsWebgpu("browser");
await describeConformance("tfjs-webgpu in Chromium", () => createBackend());
