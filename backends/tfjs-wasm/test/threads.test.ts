import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs";
import { createBackend } from "../src/index.ts";

// Its own file (own process): the wasm module can only be started once per process.
describe("tfjs-wasm threads in Node", () => {
  it("rejects a thread count outside 1..8", async () => {
    await expect(createBackend({ threads: 0 })).rejects.toThrow(/threads must be an integer from 1 to 8, got 0/);
    await expect(createBackend({ threads: 9 })).rejects.toThrow(/threads must be an integer from 1 to 8, got 9/);
  });

  it("starts tfjs's threaded-SIMD build with an XNNPACK pool of the requested size", async () => {
    const b = await createBackend({ threads: 2 });
    expect(b.manifest.device).toBe("tfjs 4.22.0 wasm (tfjs-backend-wasm-threaded-simd.wasm), SIMD on, 2 threads");
    expect(tf.getBackend()).toBe("wasm");
    // A convolution big enough for XNNPACK to split across the pool still matches a plain-JS convolution.
    const [n, h, w, ci, co] = [2, 9, 9, 3, 4];
    const x = Float32Array.from({ length: n * h * w * ci }, (_, i) => Math.sin(i));
    const f = Float32Array.from({ length: 9 * ci * co }, (_, i) => Math.cos(i));
    const got = await tf.conv2d(tf.tensor4d(x, [n, h, w, ci]), tf.tensor4d(f, [3, 3, ci, co]), 1, "same").data();
    let worst = 0;
    for (let b0 = 0; b0 < n; b0++)
      for (let y = 0; y < h; y++)
        for (let z = 0; z < w; z++)
          for (let o = 0; o < co; o++) {
            let s = 0;
            for (let dy = -1; dy <= 1; dy++)
              for (let dz = -1; dz <= 1; dz++)
                for (let c = 0; c < ci; c++) {
                  const yy = y + dy,
                    zz = z + dz;
                  if (yy < 0 || yy >= h || zz < 0 || zz >= w) continue;
                  s += x[((b0 * h + yy) * w + zz) * ci + c]! * f[(((dy + 1) * 3 + dz + 1) * ci + c) * co + o]!;
                }
            worst = Math.max(worst, Math.abs(s - got[((b0 * h + y) * w + z) * co + o]!));
          }
    expect(worst).toBeLessThan(1e-4);
  });
});
