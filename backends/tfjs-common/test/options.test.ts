import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { initParameters, mulberry32, type CnnOps } from "@nnspec/spec";
import { createCnnOps } from "../src/index.ts";

// The shared model on tfjs's cpu backend (Node): the per-backend options change how, never what, it computes.
await tf.setBackend("cpu");
const N = 2;
const rand = mulberry32(5);
const x = Float32Array.from({ length: N * 784 }, () => rand() * 2 - 0.5);
const labels = [3, 7];

async function oneStep(ops: CnnOps) {
  const model = await ops.create({ parameters: initParameters(3) });
  await model.forward(x, N, { mode: "train" });
  const { loss } = await model.backward(labels);
  const grads = await model.gradients();
  await model.dispose();
  return { loss, grads };
}

describe("@nnspec/tfjs-common options", () => {
  it("gives the same loss and gradients with every channel-sum strategy", async () => {
    const gemm = await oneStep(createCnnOps({ label: "t-gemm", channelSum: "gemm" }));
    for (const other of ["reduce", "pool"] as const) {
      const o = await oneStep(createCnnOps({ label: `t-${other}`, channelSum: other }));
      expect(o.loss, other).toBeCloseTo(gemm.loss, 5);
      for (const name of ["conv1.weight", "bn1.bias", "bn9.weight", "fc.bias"]) {
        const a = gemm.grads[name]!,
          b = o.grads[name]!;
        const max = Math.max(...Array.from(a, Math.abs));
        for (let i = 0; i < a.length; i++)
          expect(Math.abs(a[i]! - b[i]!), `${other} ${name}[${i}]`).toBeLessThanOrEqual(1e-4 * max);
      }
    }
  });

  it("gives bit-identical results with BatchNorm's affine (+ ReLU) as a fused GEMM", async () => {
    const plain = await oneStep(createCnnOps({ label: "t-plain", channelSum: "gemm" }));
    const fused = await oneStep(createCnnOps({ label: "t-fused", channelSum: "gemm", affineByGemm: true }));
    expect(fused.loss).toBe(plain.loss);
    for (const [name, g] of Object.entries(plain.grads))
      expect(Array.from(fused.grads[name]!), name).toEqual(Array.from(g));
    // Eval mode uses the same path with the running statistics.
    const evalOut = async (affineByGemm: boolean) => {
      const model = await createCnnOps({ label: "t-eval", channelSum: "gemm", affineByGemm }).create({
        parameters: initParameters(3),
      });
      const { logProbs } = await model.forward(x, N, { mode: "eval" });
      await model.dispose();
      return Array.from(logProbs);
    };
    expect(await evalOut(true)).toEqual(await evalOut(false));
  });

  it("names the backend it serves in its errors", async () => {
    const model = await createCnnOps({ label: "tfjs-test", channelSum: "reduce" }).create({
      parameters: initParameters(1),
    });
    await expect(model.backward(labels)).rejects.toThrow(/^tfjs-test CNN: backward\(\) needs a train-mode forward/);
    await model.dispose();
  });
});
