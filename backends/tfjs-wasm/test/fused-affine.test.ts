import { describe, expect, it } from "vitest";
import { createCnnOps } from "@nnspec/tfjs-common";
import { initParameters, mulberry32, type CnnOps } from "@nnspec/spec";
import { createBackend } from "../src/index.ts";

// The wasm backend fuses BatchNorm's affine + ReLU into one GEMM (XNNPACK); that must change speed only, not bits.
await createBackend();
const N = 4;
const rand = mulberry32(21);
const x = Float32Array.from({ length: N * 784 }, () => rand() * 2 - 0.5);
const labels = [1, 4, 9, 0];

async function run(ops: CnnOps) {
  const model = await ops.create({ parameters: initParameters(2) });
  const { logProbs } = await model.forward(x, N, { mode: "train", dropout: { seed: 1, step: 0 } });
  const { loss } = await model.backward(labels);
  const grads = await model.gradients();
  await model.step({ lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
  const evalOut = (await model.forward(x, N, { mode: "eval" })).logProbs;
  await model.dispose();
  return { logProbs: Array.from(logProbs), loss, grads, evalOut: Array.from(evalOut) };
}

describe("tfjs-wasm BatchNorm affine as a fused GEMM", () => {
  it("is bit-identical to the separate mul/add/relu kernels (train forward, gradients, eval)", async () => {
    const plain = await run(createCnnOps({ label: "plain", channelSum: "gemm" }));
    const fused = await run(createCnnOps({ label: "fused", channelSum: "gemm", affineByGemm: true }));
    expect(fused.logProbs).toEqual(plain.logProbs);
    expect(fused.loss).toBe(plain.loss);
    for (const [name, g] of Object.entries(plain.grads))
      expect(Array.from(fused.grads[name]!), name).toEqual(Array.from(g));
    expect(fused.evalOut).toEqual(plain.evalOut);
  });
});
