import { afterAll, describe, expect, it } from "vitest";
import {
  CNN_BUFFERS,
  CNN_PARAMS,
  compareValues,
  layerScale,
  dropoutKeeps,
  initParameters,
  mulberry32,
  summaryTable,
  toleranceFor,
  type BlockName,
  type CnnModel,
  type CnnTensors,
} from "@nnspec/spec";
import { createCnnOps } from "../src/cnn/index.ts";

const f64 = createCnnOps({ precision: "float64", threads: 1 });
const f32 = createCnnOps({ precision: "float32", threads: 1 });
const models: CnnModel[] = [];
afterAll(async () => {
  for (const m of models) await m.dispose();
});

async function make(ops: typeof f64, parameters: CnnTensors, buffers?: CnnTensors): Promise<CnnModel> {
  const m = await ops.create(buffers ? { parameters, buffers } : { parameters });
  models.push(m);
  return m;
}

/** A small normalised-looking batch and labels from a seed. */
function batch(n: number, seed: number): { x: Float64Array; labels: number[] } {
  const rand = mulberry32(seed);
  const x = new Float64Array(n * 784).map(() => (rand() - 0.3) * 2.5);
  return { x, labels: Array.from({ length: n }, () => Math.floor(rand() * 10)) };
}

function nll(logProbs: ArrayLike<number>, labels: readonly number[]): number {
  let s = 0;
  labels.forEach((y, i) => {
    s -= logProbs[i * 10 + y]!;
  });
  return s / labels.length;
}

/** Direct 7-loop convolution, the textbook definition (no im2col), for one layer on one batch. */
function naiveConv(
  x: ArrayLike<number>,
  n: number,
  cin: number,
  H: number,
  W: number,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  cout: number,
): Float64Array {
  const out = new Float64Array(n * cout * H * W);
  for (let i = 0; i < n; i++)
    for (let co = 0; co < cout; co++)
      for (let y = 0; y < H; y++)
        for (let xx = 0; xx < W; xx++) {
          let s = b[co]!;
          for (let ci = 0; ci < cin; ci++)
            for (let ky = 0; ky < 3; ky++)
              for (let kx = 0; kx < 3; kx++) {
                const yy = y + ky - 1,
                  xs = xx + kx - 1;
                if (yy < 0 || yy >= H || xs < 0 || xs >= W) continue;
                s += w[((co * cin + ci) * 3 + ky) * 3 + kx]! * x[((i * cin + ci) * H + yy) * W + xs]!;
              }
          out[((i * cout + co) * H + y) * W + xx] = s;
        }
  return out;
}

describe("reference CNN, float64 path", () => {
  const params = initParameters(3);
  // Non-trivial BN affine parameters so their gradients and the folded normalisation are exercised.
  const rand = mulberry32(11);
  for (const p of CNN_PARAMS)
    if (p.layer.startsWith("bn")) params[p.name] = params[p.name]!.map((v) => v + (rand() - 0.5) * 0.4);

  it("summary is the architecture's torchsummary table", async () => {
    const m = await make(f64, params);
    expect(await m.summary()).toEqual(summaryTable());
  });

  it("block1 and the BN running stats match a direct convolution + batch-norm computation", async () => {
    const n = 3,
      { x } = batch(n, 5);
    const m = await make(f64, params);
    const r = await m.forward(x, n, { mode: "train", record: true });
    const conv = naiveConv(x, n, 1, 28, 28, params["conv1.weight"]!, params["conv1.bias"]!, 16);
    const bufs = await m.buffers();
    const expBlock = new Float64Array(conv.length);
    const rm: number[] = [],
      rv: number[] = [];
    const cnt = n * 784;
    for (let c = 0; c < 16; c++) {
      let s = 0;
      for (let i = 0; i < n; i++) for (let p = 0; p < 784; p++) s += conv[(i * 16 + c) * 784 + p]!;
      const mean = s / cnt;
      let v = 0;
      for (let i = 0; i < n; i++) for (let p = 0; p < 784; p++) v += (conv[(i * 16 + c) * 784 + p]! - mean) ** 2;
      rm.push(0.1 * mean);
      rv.push(0.9 + 0.1 * (v / (cnt - 1))); // unbiased variance into the running estimate
      const g = params["bn1.weight"]![c]!,
        b = params["bn1.bias"]![c]!;
      for (let i = 0; i < n; i++)
        for (let p = 0; p < 784; p++) {
          const k = (i * 16 + c) * 784 + p;
          expBlock[k] = Math.max(0, ((conv[k]! - mean) / Math.sqrt(v / cnt + 1e-5)) * g + b);
        }
    }
    const tol = { rtol: 1e-10, atol: 1e-12 };
    expect(compareValues(r.blocks!.block1!, expBlock, tol).pass).toBe(true);
    expect(compareValues(bufs["bn1.running_mean"]!, rm, tol).pass).toBe(true);
    expect(compareValues(bufs["bn1.running_var"]!, rv, tol).pass).toBe(true);
    for (const b of CNN_BUFFERS.filter((b) => b.role === "num_batches_tracked")) expect(bufs[b.name]![0]).toBe(1);
    // Eval mode uses (and leaves alone) the running stats.
    await m.forward(x, n, { mode: "eval" });
    expect(Array.from((await m.buffers())["bn1.running_mean"]!)).toEqual(Array.from(bufs["bn1.running_mean"]!));
  });

  it("records every block output with the architecture's shapes, logProbs normalised", async () => {
    const n = 2,
      { x } = batch(n, 6);
    const m = await make(f64, params);
    const r = await m.forward(x, n, { mode: "train", record: true, dropout: { seed: 4, step: 0 } });
    const sizes: Record<string, number> = {
      block1: 12544,
      block4: 3136,
      block7: 784,
      pool1: 3136,
      pool2: 784,
      gap: 16,
      logits: 10,
      logProbs: 10,
    };
    for (const [k, s] of Object.entries(sizes)) expect(r.blocks![k as BlockName]!.length, k).toBe(s * n);
    for (let i = 0; i < n; i++) {
      let z = 0;
      for (let j = 0; j < 10; j++) z += Math.exp(r.logProbs[i * 10 + j]!);
      expect(Math.abs(z - 1)).toBeLessThan(1e-12);
    }
    expect(Array.from(r.blocks!.logProbs!)).toEqual(Array.from(r.logProbs));
  });

  it("gradients match central finite differences (train mode, dropout on)", async () => {
    // One image keeps ReLU/max-pool kinks rare enough for a tiny step; BN still normalises over 784 pixels.
    const n = 1,
      { x, labels } = batch(n, 7);
    const dropout = { seed: 9, step: 2 };
    const m = await make(f64, params);
    await m.forward(x, n, { mode: "train", dropout });
    const { loss } = await m.backward(labels);
    const grads = await m.gradients();
    const lossAt = async (p: CnnTensors): Promise<number> => {
      const mm = await f64.create({ parameters: p });
      const r = await mm.forward(x, n, { mode: "train", dropout });
      await mm.dispose();
      return nll(r.logProbs, labels);
    };
    expect(Math.abs(loss - (await lossAt(params)))).toBeLessThan(1e-14);
    const pick = mulberry32(21);
    for (const name of [
      "conv1.weight",
      "conv1.bias",
      "bn1.weight",
      "conv3.weight",
      "bn3.bias",
      "conv5.weight",
      "bn6.weight",
      "conv8.weight",
      "conv9.bias",
      "bn9.weight",
      "fc.weight",
      "fc.bias",
    ]) {
      const g = grads[name]!;
      let gmax = 0;
      for (const v of g) gmax = Math.max(gmax, Math.abs(v));
      for (let t = 0; t < 2; t++) {
        const i = Math.floor(pick() * g.length);
        const h = 1e-7;
        const plus = { ...params, [name]: params[name]!.slice() },
          minus = { ...params, [name]: params[name]!.slice() };
        plus[name]![i] = params[name]![i]! + h;
        minus[name]![i] = params[name]![i]! - h;
        const fd = ((await lossAt(plus)) - (await lossAt(minus))) / (2 * h);
        expect(Math.abs(fd - g[i]!), `${name}[${i}] analytic ${g[i]} vs fd ${fd}`).toBeLessThan(1e-6 * gmax + 2e-8);
      }
    }
  });

  it("SGD step follows sgdUpdate (momentum buffer starts at the first gradient)", async () => {
    const n = 2,
      { x, labels } = batch(n, 8);
    const m = await make(f64, params);
    const sgd = { lr: 0.05, momentum: 0.9, weightDecay: 1e-3 };
    await m.forward(x, n, { mode: "train" });
    await m.backward(labels);
    const g1 = await m.gradients();
    await m.step(sgd);
    const p1 = await m.parameters();
    await m.forward(x, n, { mode: "train" });
    await m.backward(labels);
    const g2 = await m.gradients();
    await m.step(sgd);
    const p2 = await m.parameters();
    for (const name of ["conv2.weight", "bn4.bias", "fc.weight"]) {
      for (let i = 0; i < 5; i++) {
        const p0 = params[name]![i]!;
        const b1 = g1[name]![i]! + sgd.weightDecay * p0;
        expect(p1[name]![i]).toBeCloseTo(p0 - sgd.lr * b1, 14);
        const b2 = sgd.momentum * b1 + g2[name]![i]! + sgd.weightDecay * p1[name]![i]!;
        expect(p2[name]![i]).toBeCloseTo(p1[name]![i]! - sgd.lr * b2, 14);
      }
    }
  });

  it("dropout: identity in eval and when omitted, inverted scaling by the shared mask rule in train", async () => {
    const n = 2,
      { x } = batch(n, 9);
    const bufs = Object.fromEntries(
      CNN_BUFFERS.map((b) => [b.name, new Float64Array(b.size).fill(b.role === "running_var" ? 1 : 0)]),
    );
    const evalPlain = await (await make(f64, params, bufs)).forward(x, n, { mode: "eval", record: true });
    const evalDrop = await (await make(f64, params, bufs)).forward(x, n, {
      mode: "eval",
      record: true,
      dropout: { seed: 1, step: 0 },
    });
    expect(Array.from(evalDrop.logProbs)).toEqual(Array.from(evalPlain.logProbs));
    const off = await (await make(f64, params)).forward(x, n, { mode: "train", record: true });
    const on = await (await make(f64, params)).forward(x, n, {
      mode: "train",
      record: true,
      dropout: { seed: 5, step: 3 },
    });
    // Everything up to pool1 is dropout-free; pool1 is reported after drop1 (layer index 0, p = 0.2).
    const pre = off.blocks!.pool1!,
      post = on.blocks!.pool1!;
    expect(Array.from(on.blocks!.block3!)).toEqual(Array.from(off.blocks!.block3!));
    let dropped = 0;
    for (let i = 0; i < pre.length; i++) {
      const keep = dropoutKeeps(5, 0, 3, i, 0.2);
      if (!keep) dropped++;
      expect(post[i]).toBe(keep ? pre[i]! * (1 / 0.8) : 0);
    }
    expect(dropped / pre.length).toBeGreaterThan(0.15);
    expect(dropped / pre.length).toBeLessThan(0.25);
  });

  it("dropout rates: a forward's rates set mask and scale, and its backward scales by the same rates", async () => {
    const n = 1,
      { x, labels } = batch(n, 12);
    const run = async (p: CnnTensors, dropout?: { seed: number; step: number; rates?: number[] }) => {
      const m = await make(f64, p);
      const r = await m.forward(x, n, { mode: "train", record: true, ...(dropout ? { dropout } : {}) });
      const { loss } = await m.backward(labels);
      return { r, loss, grads: await m.gradients() };
    };
    // Rate 0 keeps everything at scale 1: forward and gradients as with dropout off (a backward at the
    // architecture's p would scale by 1/0.8 and differ).
    const off = await run(params);
    const zero = await run(params, { seed: 4, step: 1, rates: [0, 0, 0] });
    expect(Array.from(zero.r.logProbs)).toEqual(Array.from(off.r.logProbs));
    for (const name of ["conv1.weight", "bn6.bias", "fc.weight"])
      expect(Array.from(zero.grads[name]!), name).toEqual(Array.from(off.grads[name]!));
    // Other rates: drop1's mask and scale at rate 0.5, and gradients through all three layers by finite differences.
    const dropout = { seed: 4, step: 1, rates: [0.5, 0.35, 0.4] };
    const on = await run(params, dropout);
    const pre = off.r.blocks!.pool1!,
      post = on.r.blocks!.pool1!;
    for (let i = 0; i < pre.length; i++) expect(post[i]).toBe(dropoutKeeps(4, 0, 1, i, 0.5) ? pre[i]! * 2 : 0);
    for (const [name, i] of [
      ["conv1.weight", 5],
      ["bn6.bias", 3],
      ["conv8.weight", 700],
    ] as const) {
      const h = 1e-7;
      const at = async (v: number) =>
        (await run({ ...params, [name]: params[name]!.map((w, j) => (j === i ? v : w)) }, dropout)).loss;
      const fd = ((await at(params[name]![i]! + h)) - (await at(params[name]![i]! - h))) / (2 * h);
      const g = on.grads[name]![i]!;
      expect(Math.abs(fd - g), `${name}[${i}] analytic ${g} vs fd ${fd}`).toBeLessThan(1e-6 * Math.abs(g) + 2e-8);
    }
    // Rates the contract refuses are refused, not clamped.
    const m = await make(f64, params);
    await expect(
      m.forward(x, n, { mode: "train", dropout: { seed: 1, step: 0, rates: [0.5, 1, 0.2] } }),
    ).rejects.toThrow(/dropout rate 1/);
    await expect(m.forward(x, n, { mode: "train", dropout: { seed: 1, step: 0, rates: [0.5] } })).rejects.toThrow(
      /expected 3/,
    );
  });

  it("maxpool routes the gradient to the first maximum of a tied window", async () => {
    const { MaxPool2d } = await import("../src/cnn/layers.ts");
    const { arrayFactory } = await import("../src/cnn/arrays.ts");
    const pool = new MaxPool2d(arrayFactory("float64"), "pool", [1, 2, 4]);
    const x = Float64Array.from([1, 3, 5, 5, 3, 2, 5, 5]); // window 1: single max 3 at index 1 and 4 → first (1); window 2: four 5s → index 2
    const y = pool.forward(x, 1);
    expect(Array.from(y)).toEqual([3, 5]);
    const dx = pool.backward(Float64Array.from([10, 20]), 1);
    expect(Array.from(dx)).toEqual([0, 10, 20, 0, 0, 0, 0, 0]);
  });
});

describe("reference CNN, float32 path and threads", () => {
  const params = initParameters(4);

  it("float32 agrees with float64 to the float32 tolerance (forward, gradients, buffers)", async () => {
    const n = 4,
      { x, labels } = batch(n, 12);
    const opts = { mode: "train" as const, record: true, dropout: { seed: 2, step: 1 } };
    const a = await make(f64, params),
      b = await make(f32, params);
    const ra = await a.forward(x, n, opts),
      rb = await b.forward(x, n, opts);
    expect(rb.logProbs).toBeInstanceOf(Float32Array);
    const vt = toleranceFor("float32", "value"),
      gt = toleranceFor("float32", "gradient");
    for (const k of ["block3", "pool2", "block9", "logProbs"] as const) {
      const c = compareValues(rb.blocks![k]!, ra.blocks![k]!, vt);
      expect(c.pass, `${k}: worst ratio ${c.worstRatio}`).toBe(true);
    }
    await a.backward(labels);
    await b.backward(labels);
    const ga = await a.gradients(),
      gb = await b.gradients();
    for (const p of CNN_PARAMS) {
      // The suite's rule (spec/src/tolerance.ts): a gradient is judged against its layer's largest gradient, so a
      // conv bias that is exactly 0 before a train-mode BatchNorm is held to its rounding residue.
      const scale = layerScale(CNN_PARAMS.filter((q) => q.layer === p.layer).map((q) => ga[q.name]!));
      const c = compareValues(gb[p.name]!, ga[p.name]!, gt, "gradient", scale);
      expect(c.pass, `${p.name}: worst ratio ${c.worstRatio}`).toBe(true);
    }
    const ba = await a.buffers(),
      bb = await b.buffers();
    for (const s of CNN_BUFFERS) {
      const c = compareValues(bb[s.name]!, ba[s.name]!, vt);
      expect(c.pass, `${s.name}: worst ratio ${c.worstRatio}`).toBe(true);
    }
  });

  it("two threads compute what one thread computes", async () => {
    const n = 5,
      { x, labels } = batch(n, 13);
    const two = createCnnOps({ precision: "float64", threads: 2 });
    const a = await make(f64, params),
      b = await make(two, params);
    const opts = { mode: "train" as const, dropout: { seed: 3, step: 0 } };
    const ra = await a.forward(x, n, opts),
      rb = await b.forward(x, n, opts);
    expect(compareValues(rb.logProbs, ra.logProbs, toleranceFor("float64", "value")).pass).toBe(true);
    await a.backward(labels);
    await b.backward(labels);
    const ga = await a.gradients(),
      gb = await b.gradients();
    for (const p of CNN_PARAMS)
      expect(
        compareValues(gb[p.name]!, ga[p.name]!, toleranceFor("float64", "gradient"), "gradient").pass,
        p.name,
      ).toBe(true);
  });

  it("trains: loss falls over 20 steps on a separable synthetic problem (float32, 2 threads)", async () => {
    // Class k: a bright 8×8 square in quadrant k (4 classes), plus noise.
    const n = 16,
      rand = mulberry32(17);
    const x = new Float32Array(n * 784),
      labels: number[] = [];
    for (let i = 0; i < n; i++) {
      const k = i % 4;
      labels.push(k);
      const oy = 3 + Math.floor(k / 2) * 14,
        ox = 3 + (k % 2) * 14;
      for (let p = 0; p < 784; p++) x[i * 784 + p] = -0.42 + rand() * 0.3;
      for (let y = 0; y < 8; y++) for (let xx = 0; xx < 8; xx++) x[i * 784 + (oy + y) * 28 + ox + xx] = 2.8;
    }
    const m = await make(createCnnOps({ precision: "float32", threads: 2 }), initParameters(1));
    const losses: number[] = [];
    for (let s = 0; s < 20; s++) {
      await m.forward(x, n, { mode: "train", dropout: { seed: 1, step: s } });
      losses.push((await m.backward(labels)).loss);
      await m.step({ lr: 0.05, momentum: 0.9, weightDecay: 0 });
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(Math.min(...losses.slice(-3)), `losses ${losses.map((l) => l.toFixed(3)).join(" ")}`).toBeLessThan(
      0.5 * losses[0]!,
    );
  });
});
