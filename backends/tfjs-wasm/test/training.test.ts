import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { dropoutKeeps, initParameters, mulberry32 } from "@nnspec/spec";
import { trainingKit } from "@nnspec/tfjs-common/testing";
import { createBackend } from "../src/index.ts";
import { dropoutMaskNhwc } from "../src/cnn/dropout-mask.ts";

const backend = await createBackend();
const cnn = backend.cnn!;
const N = 8;
const { x, trainSteps } = trainingKit(N);

describe("tfjs-wasm CNN training", () => {
  it("runs every kernel of a training step on wasm and never initialises another backend", async () => {
    const model = await cnn.create({ parameters: initParameters(1) });
    const profile = await tf.profile(async () => {
      await trainSteps(model, 1);
    });
    await model.dispose();
    const kernels = new Set(profile.kernelNames);
    expect(kernels.has("Conv2D") || kernels.has("FusedConv2D")).toBe(true);
    // Pooling forward, and its first-max backward (a Step mask; see tfjs-common ops.ts maxPoolGrad).
    expect(kernels.has("MaxPool") && kernels.has("Step")).toBe(true);
    for (const k of kernels) {
      // "…__op" entries are tfjs op scopes (customGrad wrappers such as fusedConv2d__op); their kernels are listed too.
      if (k.endsWith("__op")) continue;
      expect(tf.getKernel(k, "wasm"), `kernel ${k} has no wasm implementation`).toBeDefined();
    }
    expect(tf.getBackend()).toBe("wasm");
    expect(Object.keys(tf.engine().registry)).toEqual(["wasm"]); // cpu/webgl factories never instantiated
    expect(backend.manifest.device).toMatch(/wasm/);
  });

  it("leaks no tensors over ten training steps", async () => {
    const model = await cnn.create({ parameters: initParameters(2) });
    // The first step creates the momentum buffer and cached rows of ones; an eval forward derives layer views.
    await trainSteps(model, 1);
    await model.forward(x, N, { mode: "eval" });
    const before = tf.memory().numTensors;
    await trainSteps(model, 10);
    await model.forward(x, N, { mode: "eval", record: true });
    expect(tf.memory().numTensors).toBe(before);
    await model.dispose();
  });

  it("is deterministic under a seed: two runs give identical losses and parameters", async () => {
    const run = async () => {
      const model = await cnn.create({ parameters: initParameters(5) });
      const losses = await trainSteps(model, 3);
      const params = await model.parameters();
      await model.dispose();
      return { losses, params };
    };
    const a = await run(),
      b = await run();
    expect(b.losses).toEqual(a.losses);
    expect(b.params["conv5.weight"]).toEqual(a.params["conv5.weight"]);
    expect(a.losses[2]).toBeLessThan(a.losses[0]!); // and it learns the batch
  });

  it("builds dropout masks by the shared rule at NCHW indices", () => {
    const [n, c, h, w] = [2, 3, 4, 5];
    const mask = dropoutMaskNhwc(9, 1, 4, 0.2, n, c, h, w);
    for (let s = 0; s < n; s++)
      for (let ch = 0; ch < c; ch++)
        for (let y = 0; y < h; y++)
          for (let xx = 0; xx < w; xx++) {
            const nchw = ((s * c + ch) * h + y) * w + xx;
            const nhwc = ((s * h + y) * w + xx) * c + ch;
            expect(mask[nhwc]).toBeCloseTo(dropoutKeeps(9, 1, 4, nchw, 0.2) ? 1 / 0.8 : 0, 6);
          }
  });

  it("supplies Conv2DBackpropFilter on wasm, so tf.grad through conv2d works and matches a direct sum", () => {
    const r = mulberry32(4);
    const xs = Float32Array.from({ length: 2 * 5 * 5 * 3 }, () => r() - 0.5);
    const dys = Float32Array.from({ length: 2 * 5 * 5 * 4 }, () => r() - 0.5);
    const xt = tf.tensor4d(xs, [2, 5, 5, 3]);
    const dyt = tf.tensor4d(dys, [2, 5, 5, 4]);
    const w0 = tf.zeros([3, 3, 3, 4]) as tf.Tensor4D;
    const g = tf.grad((f: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(xt, f as tf.Tensor4D, 1, "same"), dyt)))(w0);
    const got = g.dataSync();
    for (let a = 0; a < 3; a++)
      for (let b = 0; b < 3; b++)
        for (let ci = 0; ci < 3; ci++)
          for (let co = 0; co < 4; co++) {
            let s = 0;
            for (let n = 0; n < 2; n++)
              for (let y = 0; y < 5; y++)
                for (let xx = 0; xx < 5; xx++) {
                  const yy = y + a - 1,
                    xi = xx + b - 1;
                  if (yy < 0 || yy >= 5 || xi < 0 || xi >= 5) continue;
                  s += xs[((n * 5 + yy) * 5 + xi) * 3 + ci]! * dys[((n * 5 + y) * 5 + xx) * 4 + co]!;
                }
            expect(got[((a * 3 + b) * 3 + ci) * 4 + co]).toBeCloseTo(s, 5);
          }
    tf.dispose([xt, dyt, w0, g]);
  });
});
