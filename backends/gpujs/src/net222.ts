import {
  weightsOf,
  WEIGHT_NAMES,
  type Forward,
  type Gradients,
  type Net222Config,
  type Net222Ops,
  type StepRecord,
  type Weights,
} from "@nnspec/spec";
import type { GpuRuntime, KernelThis } from "./runtime.ts";

/**
 * The 2-2-2 network as two gpu.js kernels: `evaluate` computes the forward values and the weight gradients
 * (backpropagation in matrix form: δo = (a_o − t)·σ'(o), δh = W2ᵀδo ⊙ σ'(h), ∂E/∂W = δ ⊗ input), one output
 * cell per quantity; `descend` applies w ← w − η·∂E/∂w. Training keeps the weights in gpu.js between steps.
 *
 * Layout of the problem vector q: [i1, i2, t1, t2, b1, b2, w1..w8]; evaluate's output: the 11 forward
 * values in FORWARD order below, then the 8 gradients.
 */
const FORWARD_ORDER = ["h1", "a_h1", "h2", "a_h2", "o1", "a_o1", "o2", "a_o2", "E1", "E2", "E_total"] as const;
const OUT = FORWARD_ORDER.length + WEIGHT_NAMES.length;

function evaluate(this: KernelThis<never>, q: Float32Array, w: Float32Array): number {
  const t = this.thread.x;
  const i1 = q[0]!,
    i2 = q[1]!,
    t1 = q[2]!,
    t2 = q[3]!,
    b1 = q[4]!,
    b2 = q[5]!;
  const h1 = w[0]! * i1 + w[1]! * i2 + b1;
  const h2 = w[2]! * i1 + w[3]! * i2 + b1;
  const ah1 = 1 / (1 + Math.exp(-h1));
  const ah2 = 1 / (1 + Math.exp(-h2));
  const o1 = w[4]! * ah1 + w[5]! * ah2 + b2;
  const o2 = w[6]! * ah1 + w[7]! * ah2 + b2;
  const ao1 = 1 / (1 + Math.exp(-o1));
  const ao2 = 1 / (1 + Math.exp(-o2));
  const e1 = 0.5 * (t1 - ao1) * (t1 - ao1);
  const e2 = 0.5 * (t2 - ao2) * (t2 - ao2);
  const d1 = (ao1 - t1) * ao1 * (1 - ao1);
  const d2 = (ao2 - t2) * ao2 * (1 - ao2);
  const dh1 = (d1 * w[4]! + d2 * w[6]!) * ah1 * (1 - ah1);
  const dh2 = (d1 * w[5]! + d2 * w[7]!) * ah2 * (1 - ah2);
  let v = 0;
  if (t === 0) v = h1;
  if (t === 1) v = ah1;
  if (t === 2) v = h2;
  if (t === 3) v = ah2;
  if (t === 4) v = o1;
  if (t === 5) v = ao1;
  if (t === 6) v = o2;
  if (t === 7) v = ao2;
  if (t === 8) v = e1;
  if (t === 9) v = e2;
  if (t === 10) v = e1 + e2;
  if (t === 11) v = dh1 * i1;
  if (t === 12) v = dh1 * i2;
  if (t === 13) v = dh2 * i1;
  if (t === 14) v = dh2 * i2;
  if (t === 15) v = d1 * ah1;
  if (t === 16) v = d1 * ah2;
  if (t === 17) v = d2 * ah1;
  if (t === 18) v = d2 * ah2;
  return v;
}

/** w − lr · grad, the gradients read from evaluate's output (offset 11). */
function descend(this: KernelThis<"G">, w: Float32Array, ev: Float32Array, lr: number): number {
  return w[this.thread.x]! - lr * ev[this.constants.G + this.thread.x]!;
}

const problem = (c: Net222Config) => Float32Array.of(c.i1, c.i2, c.t1, c.t2, c.b1, c.b2);
const weightVector = (w: Weights) => Float32Array.from(WEIGHT_NAMES, (k) => w[k]);

function unpack(v: Float32Array): { forward: Forward; gradients: Gradients } {
  const forward = Object.fromEntries(FORWARD_ORDER.map((k, i) => [k, v[i]!])) as Forward;
  const gradients = Object.fromEntries(WEIGHT_NAMES.map((k, i) => [k, v[FORWARD_ORDER.length + i]!])) as Gradients;
  return { forward, gradients };
}
const weightsFrom = (v: Float32Array): Weights => Object.fromEntries(WEIGHT_NAMES.map((k, i) => [k, v[i]!])) as Weights;

export function createNet222Ops(rt: GpuRuntime): Net222Ops {
  const evalK = () => rt.kernel("net222.evaluate", evaluate, OUT, {});
  const descendK = () => rt.kernel("net222.descend", descend, WEIGHT_NAMES.length, { G: FORWARD_ORDER.length });
  const run = async (c: Net222Config) => {
    const q = await rt.upload(problem(c)),
      w = await rt.upload(weightVector(c));
    const ev = await evalK()(q, w);
    const v = await rt.read(ev, OUT);
    return { q, w, ev, v };
  };
  const free = (...ts: Parameters<typeof rt.release>[0][]) => {
    for (const t of ts) rt.release(t);
  };
  return {
    async forward(c) {
      const r = await run(c);
      free(r.q, r.w, r.ev);
      return unpack(r.v).forward;
    },
    async gradients(c) {
      const r = await run(c);
      free(r.q, r.w, r.ev);
      return unpack(r.v).gradients;
    },
    async step(c, lr) {
      const r = await run(c);
      const next = await descendK()(r.w, r.ev, lr);
      const out = weightsFrom(await rt.read(next, WEIGHT_NAMES.length));
      free(r.q, r.w, r.ev, next);
      return out;
    },
    async train(config, lr, steps) {
      const records: StepRecord[] = [];
      const q = await rt.upload(problem(config));
      let w = await rt.upload(weightVector(weightsOf(config)));
      for (let step = 0; step <= steps; step++) {
        const ev = await evalK()(q, w);
        const { forward, gradients } = unpack(await rt.read(ev, OUT));
        records.push({ step, weights: weightsFrom(await rt.read(w, WEIGHT_NAMES.length)), forward, gradients });
        if (step < steps) {
          const next = await descendK()(w, ev, lr);
          free(w);
          w = next;
        }
        free(ev);
      }
      free(q, w);
      return records;
    },
  };
}
