import type { Forward, Gradients, Net222Config, Net222Ops, StepRecord, Weights } from "@nnspec/spec";

/**
 * The 2-2-2 network as a generic two-layer dense network with backpropagation by the chain rule (matrix form),
 * written independently of the hand-derived per-weight formulas the goldens come from.
 */
type Vec2 = [number, number];
type Mat2 = [Vec2, Vec2]; // row = output unit

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const matVec = (m: Mat2, v: Vec2, b: number): Vec2 => [
  m[0][0] * v[0] + m[0][1] * v[1] + b,
  m[1][0] * v[0] + m[1][1] * v[1] + b,
];
const outer = (d: Vec2, v: Vec2): Mat2 => [
  [d[0] * v[0], d[0] * v[1]],
  [d[1] * v[0], d[1] * v[1]],
];

interface Layers {
  W1: Mat2;
  W2: Mat2;
}
const layersOf = (c: Weights): Layers => ({
  W1: [
    [c.w1, c.w2],
    [c.w3, c.w4],
  ],
  W2: [
    [c.w5, c.w6],
    [c.w7, c.w8],
  ],
});

function run(c: Net222Config) {
  const { W1, W2 } = layersOf(c);
  const x: Vec2 = [c.i1, c.i2],
    t: Vec2 = [c.t1, c.t2];
  const h = matVec(W1, x, c.b1);
  const ah: Vec2 = [sigmoid(h[0]), sigmoid(h[1])];
  const o = matVec(W2, ah, c.b2);
  const ao: Vec2 = [sigmoid(o[0]), sigmoid(o[1])];
  const E: Vec2 = [0.5 * (t[0] - ao[0]) ** 2, 0.5 * (t[1] - ao[1]) ** 2];
  const forward: Forward = {
    h1: h[0],
    a_h1: ah[0],
    h2: h[1],
    a_h2: ah[1],
    o1: o[0],
    a_o1: ao[0],
    o2: o[1],
    a_o2: ao[1],
    E1: E[0],
    E2: E[1],
    E_total: E[0] + E[1],
  };
  // Backward: δo = ∂E/∂o, δh = (W2ᵀ δo) ⊙ σ'(h); ∂E/∂W = δ ⊗ input.
  const dOut: Vec2 = [(ao[0] - t[0]) * ao[0] * (1 - ao[0]), (ao[1] - t[1]) * ao[1] * (1 - ao[1])];
  const back: Vec2 = [dOut[0] * W2[0][0] + dOut[1] * W2[1][0], dOut[0] * W2[0][1] + dOut[1] * W2[1][1]];
  const dHid: Vec2 = [back[0] * ah[0] * (1 - ah[0]), back[1] * ah[1] * (1 - ah[1])];
  const g1 = outer(dHid, x),
    g2 = outer(dOut, ah);
  const gradients: Gradients = {
    w1: g1[0][0],
    w2: g1[0][1],
    w3: g1[1][0],
    w4: g1[1][1],
    w5: g2[0][0],
    w6: g2[0][1],
    w7: g2[1][0],
    w8: g2[1][1],
  };
  return { forward, gradients };
}

const weights = (c: Weights): Weights => ({
  w1: c.w1,
  w2: c.w2,
  w3: c.w3,
  w4: c.w4,
  w5: c.w5,
  w6: c.w6,
  w7: c.w7,
  w8: c.w8,
});

function descend(c: Net222Config, g: Gradients, lr: number): Net222Config {
  const next = { ...c };
  for (const k of Object.keys(g) as (keyof Gradients)[]) next[k] = c[k] - lr * g[k];
  return next;
}

export const net222Ops: Net222Ops = {
  async forward(c) {
    return run(c).forward;
  },
  async gradients(c) {
    return run(c).gradients;
  },
  async step(c, lr) {
    return weights(descend(c, run(c).gradients, lr));
  },
  async train(config, lr, steps) {
    const records: StepRecord[] = [];
    let c = config;
    for (let step = 0; step <= steps; step++) {
      const r = run(c);
      records.push({ step, weights: weights(c), forward: r.forward, gradients: r.gradients });
      c = descend(c, r.gradients, lr);
    }
    return records;
  },
};
