import { describe, expect, it } from "vitest";
import { initParameters, mulberry32, type CnnModel, type CnnTensors } from "@nnspec/spec";
import { createBackend } from "../src/index.ts";

/** Largest |a − b| over a tensor, relative to the tensor's largest |b|. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0,
    m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return m === 0 ? d : d / m;
}
/** Worst relDiff over the tensors, with its name. Conv biases feed BatchNorm, so their gradients are rounding noise around 0: skipped. */
function worst(a: CnnTensors, b: CnnTensors, skipConvBias = false): string {
  const rows = Object.keys(b)
    .filter((k) => !(skipConvBias && /^conv\d\.bias$/.test(k)))
    .map((k) => [relDiff(a[k]!, b[k]!), k] as const);
  const [d, k] = rows.reduce((m, r) => (r[0] > m[0] ? r : m));
  return `${d.toExponential(1)} (${k})`;
}
const below = (limit: number) => (s: string) => expect(Number(s.split(" ")[0]), s).toBeLessThan(limit);

const rand = mulberry32(11);
const N = 9; // not a multiple of the thread counts below: uneven slices
const x = Float32Array.from({ length: N * 784 }, () => rand() * 3 - 0.5);
const labels = Array.from({ length: N }, () => Math.floor(rand() * 10));

async function train(threads: number): Promise<{
  losses: number[];
  gradients: CnnTensors;
  parameters: CnnTensors;
  buffers: CnnTensors;
  model: CnnModel;
  dispose(): Promise<void>;
}> {
  const backend = await createBackend({ threads });
  const model = await backend.cnn!.create({ parameters: initParameters(3) });
  const losses: number[] = [];
  let gradients: CnnTensors = {};
  for (let step = 0; step < 3; step++) {
    await model.forward(x, N, { mode: "train", dropout: { seed: 5, step } });
    losses.push((await model.backward(labels)).loss);
    gradients = await model.gradients();
    await model.step({ lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
  }
  return {
    losses,
    gradients,
    parameters: await model.parameters(),
    buffers: await model.buffers(),
    model,
    dispose: () => backend.dispose?.() ?? Promise.resolve(),
  };
}

describe("wasm backend threads", () => {
  it("split the batch without changing the result beyond float32 re-association (1 vs 3 threads, 3 SGD steps)", async () => {
    const one = await train(1),
      three = await train(3);
    try {
      for (let s = 0; s < 3; s++)
        expect(Math.abs(three.losses[s]! - one.losses[s]!)).toBeLessThan(1e-5 * Math.abs(one.losses[s]!));
      below(1e-4)(worst(three.gradients, one.gradients, true));
      below(1e-5)(worst(three.parameters, one.parameters));
      below(1e-5)(worst(three.buffers, one.buffers));
    } finally {
      await one.dispose();
      await three.dispose();
    }
  });

  it("are deterministic: the same thread count gives bit-identical results", async () => {
    const a = await train(2),
      b = await train(2);
    try {
      expect(b.losses).toEqual(a.losses);
      for (const k of Object.keys(a.parameters))
        expect(Array.from(b.parameters[k]!)).toEqual(Array.from(a.parameters[k]!));
    } finally {
      await a.dispose();
      await b.dispose();
    }
  });

  it("run eval per image: a big batch (chunked) and a batch of one agree bit for bit, in a threaded model", async () => {
    const backend = await createBackend({ threads: 2 });
    try {
      const model = await backend.cnn!.create({ parameters: initParameters(4) });
      const n = 300; // more than one eval chunk of 256
      const big = Float32Array.from({ length: n * 784 }, (_, i) => x[i % x.length]! * ((i % 7) - 3));
      const all = (await model.forward(big, n, { mode: "eval" })).logProbs;
      for (const i of [0, 255, 256, 299]) {
        const one = (await model.forward(big.subarray(i * 784, (i + 1) * 784), 1, { mode: "eval" })).logProbs;
        expect(Array.from(all.subarray(i * 10, (i + 1) * 10))).toEqual(Array.from(one));
      }
    } finally {
      await backend.dispose?.();
    }
  });

  it("keep parameters and momentum when a bigger batch re-lays out memory; a batch of one trains on one thread", async () => {
    const backend = await createBackend({ threads: 2 });
    try {
      const model = await backend.cnn!.create({ parameters: initParameters(5) });
      await model.forward(x.subarray(0, 784), 1, { mode: "train" });
      await model.backward([labels[0]!]);
      await model.step({ lr: 0.1, momentum: 0.9, weightDecay: 0 });
      const params = await model.parameters(),
        momentum = await model.optimizerState!();
      await model.forward(x, N, { mode: "train" }); // N > 1: a new layout
      expect(await model.parameters()).toEqual(params);
      expect(await model.optimizerState!()).toEqual(momentum);
      expect(Number.isFinite((await model.backward(labels)).loss)).toBe(true);
    } finally {
      await backend.dispose?.();
    }
  });
});
