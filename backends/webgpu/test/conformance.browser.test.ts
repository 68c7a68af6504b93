import { describeConformance } from "@nnspec/conformance/vitest";
import { createBackend } from "../src/index.ts";
import { describeWebgpu } from "./training-checks.ts";

// The WGSL backend in headless Chromium (vitest "browser" project; --enable-unsafe-webgpu, SwiftShader without a GPU):
// this package's own checks, then the one conformance suite, unchanged, on the same backend.
const backend = await createBackend();
describeWebgpu("browser", backend);
await describeConformance("webgpu in Chromium", async () => backend);
