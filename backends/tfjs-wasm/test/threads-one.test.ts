import { describe, expect, it } from "vitest";
import { createBackend } from "../src/index.ts";

// Its own file (own process): the wasm module can only be started once per process.
describe("tfjs-wasm with threads: 1", () => {
  it("uses tfjs's own single-threaded SIMD start", async () => {
    const b = await createBackend({ threads: 1 });
    expect(b.manifest.device).toBe("tfjs 4.22.0 wasm (tfjs-backend-wasm-simd.wasm), SIMD on, 1 thread");
  });
});
