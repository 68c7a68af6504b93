import { afterAll, describe, expect, it } from "vitest";
import { compareValues, mulberry32, toleranceFor, type QuantityKind } from "@nnspec/spec";
import { GpuRuntime, Scope } from "../src/runtime.ts";
import { BatchNorm2dRelu, Conv2d, MaxPool2d } from "../src/cnn/layers.ts";

/**
 * The CNN kernels against direct float64 loops on random data, on both Node modes of gpu.js. Geometries are
 * off the CNN's own (odd widths, Cin ≠ Cout) so index decoding and the any-width filter gradient are exercised.
 */
const rand = mulberry32(2024);
const randoms = (k: number) => Float32Array.from({ length: k }, () => rand() * 2 - 1);

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, kind: QuantityKind = "value") {
  const c = compareValues(actual, expected, toleranceFor("float32", kind), kind);
  expect(
    c.pass,
    `worst ${c.worstRatio.toExponential(2)}× tolerance at [${c.worstIndex}]: ${c.actualAtWorst} vs ${c.expectedAtWorst}`,
  ).toBe(true);
}

for (const mode of ["webasm", "cpu"] as const) {
  describe(`gpujs kernels (${mode})`, () => {
    const rt = new GpuRuntime(mode);
    afterAll(() => rt.destroy());
    const pass = (n: number, train = true) => ({ rt, scope: new Scope(rt), n, train, dropout: null });

    for (const [H, W] of [
      [5, 6],
      [4, 7],
    ] as const) {
      it(`conv 3×3 pad 1 forward, input and filter gradients (${H}×${W})`, async () => {
        const n = 2,
          Cin = 3,
          Cout = 4;
        const x = randoms(n * Cin * H * W),
          w = randoms(Cout * Cin * 9),
          b = randoms(Cout),
          dy = randoms(n * Cout * H * W);
        const conv = new Conv2d("conv", [Cin, H, W], Cout, await rt.upload(w), await rt.upload(b));
        const out = await rt.read(await conv.forward(await rt.upload(x), pass(n)), n * Cout * H * W);
        const dx = await rt.read((await conv.backward(await rt.upload(dy), pass(n), true))!, n * Cin * H * W);
        const gW = await rt.read(conv.weight.grad!, Cout * Cin * 9),
          gB = await rt.read(conv.bias.grad!, Cout);
        const eOut = new Float64Array(out.length),
          eDx = new Float64Array(dx.length),
          eW = new Float64Array(gW.length),
          eB = new Float64Array(Cout);
        for (let i = 0; i < n; i++)
          for (let co = 0; co < Cout; co++)
            for (let y = 0; y < H; y++)
              for (let xo = 0; xo < W; xo++) {
                const o = ((i * Cout + co) * H + y) * W + xo;
                eOut[o] = b[co]!;
                eB[co] = eB[co]! + dy[o]!;
                for (let ci = 0; ci < Cin; ci++)
                  for (let ky = 0; ky < 3; ky++)
                    for (let kx = 0; kx < 3; kx++) {
                      const yy = y + ky - 1,
                        xx = xo + kx - 1;
                      if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                      const xi = ((i * Cin + ci) * H + yy) * W + xx,
                        wi = ((co * Cin + ci) * 3 + ky) * 3 + kx;
                      eOut[o] = eOut[o]! + x[xi]! * w[wi]!;
                      eDx[xi] = eDx[xi]! + dy[o]! * w[wi]!;
                      eW[wi] = eW[wi]! + dy[o]! * x[xi]!;
                    }
              }
        expectClose(out, eOut);
        expectClose(dx, eDx, "gradient");
        expectClose(gW, eW, "gradient");
        expectClose(gB, eB, "gradient");
      });
    }

    it("max-pool 2×2 sends a tied window's gradient to its first maximum only", async () => {
      const x = Float32Array.of(
        1,
        1,
        0,
        2,
        1,
        1,
        2,
        2,
        /* row 2 */ 3,
        0,
        5,
        4,
        1,
        3,
        5,
        5,
        /* row 4 unused */ 9,
        9,
        9,
        9,
      );
      // One plane of 5×4: the last row is dropped by floor(5/2) = 2 pooled rows.
      const pool = new MaxPool2d("pool", [1, 5, 4]);
      const out = await rt.read(await pool.forward(await rt.upload(x), pass(1)), 4);
      expect(Array.from(out)).toEqual([1, 2, 3, 5]);
      const dx = await rt.read(await pool.backward(await rt.upload(Float32Array.of(10, 20, 30, 40)), pass(1)), 20);
      expect(Array.from(dx)).toEqual([10, 0, 0, 20, 0, 0, 0, 0, 30, 0, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    });

    it("BatchNorm train mode: batch statistics, unbiased running variance, ReLU", async () => {
      const n = 3,
        C = 2,
        H = 3,
        W = 5,
        P = H * W,
        eps = 1e-5,
        momentum = 0.1;
      // Offset data: a large mean relative to the spread, where a naive float32 mean loses digits.
      const x = Float32Array.from(randoms(n * C * P), (v, k) => 40 + v * (1 + (k % 3)));
      const gamma = Float32Array.of(1.5, -0.5),
        beta = Float32Array.of(0.1, 0.2);
      const running = Float32Array.of(0.5, -0.5, 2, 3);
      const bn = new BatchNorm2dRelu(
        "bn",
        [C, H, W],
        eps,
        momentum,
        await rt.upload(Float32Array.of(...gamma, ...beta)),
        await rt.upload(running),
      );
      const a = await rt.read(await bn.forward(await rt.upload(x), pass(n)), x.length);
      const newRunning = await rt.read(bn.running, 2 * C);
      const eA = new Float64Array(x.length),
        eRun = new Float64Array(2 * C);
      for (let c = 0; c < C; c++) {
        let s = 0,
          v = 0;
        for (let i = 0; i < n; i++) for (let p = 0; p < P; p++) s += x[(i * C + c) * P + p]!;
        const mean = s / (n * P);
        for (let i = 0; i < n; i++) for (let p = 0; p < P; p++) v += (x[(i * C + c) * P + p]! - mean) ** 2;
        eRun[c] = momentum * mean + (1 - momentum) * running[c]!;
        eRun[C + c] = momentum * (v / (n * P - 1)) + (1 - momentum) * running[C + c]!;
        for (let i = 0; i < n; i++)
          for (let p = 0; p < P; p++) {
            const k = (i * C + c) * P + p;
            eA[k] = Math.max(0, ((x[k]! - mean) / Math.sqrt(v / (n * P) + eps)) * gamma[c]! + beta[c]!);
          }
      }
      expectClose(newRunning, eRun);
      expectClose(a, eA, "gradient");
      expect(bn.numBatchesTracked).toBe(1);
    });
  });
}
