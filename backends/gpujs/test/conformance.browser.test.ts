import { expect, it } from "vitest";
import { describeConformance } from "@nnspec/conformance/vitest";
import { createBackend } from "../src/index.ts";

// The same conformance suite as conformance.test.ts, inside headless Chromium: gpu.js picks WebGL2 (SwiftShader).
await describeConformance("gpujs in Chromium", () => createBackend());

it("gpu.js runs its WebGL2 kernels in the page, not a CPU fallback", async () => {
  const backend = await createBackend();
  try {
    console.log(`gpujs in Chromium: ${backend.manifest.device}, ${backend.manifest.precision}`);
    expect(backend.manifest.environment).toBe("browser");
    expect(backend.manifest.device).toBe("gpu.js 2.24 webgl2");
  } finally {
    await backend.dispose?.();
  }
});
