import { describeConformance } from "@nnspec/conformance/vitest";
import { createBackend } from "../src/index.ts";
import { describeWebgpu } from "./training-checks.ts";

// The WGSL backend in Node (Dawn; Chromium's SwiftShader where there is no GPU): this package's own checks, then the
// one conformance suite, unchanged, on the same backend (its pipelines compile once; the suite disposes it).
const backend = await createBackend();
describeWebgpu("node", backend);
await describeConformance("webgpu", async () => backend);
