import type { ForwardName, Net222Config, WeightName, Weights } from "./config.ts";

/**
 * The hand-derived 2-2-2 formulas of the contract, in float64, exactly as the issue and the class sheet write
 * them. Goldens are generated from these and the Excel audit replays rows with them; backends implement the
 * network on their own and are judged against the goldens.
 */
export type Forward = Record<ForwardName, number>;
export type Gradients = Record<WeightName, number>;

export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

export function forward(c: Net222Config): Forward {
  const h1 = c.w1 * c.i1 + c.w2 * c.i2 + c.b1;
  const h2 = c.w3 * c.i1 + c.w4 * c.i2 + c.b1;
  const a_h1 = sigmoid(h1),
    a_h2 = sigmoid(h2);
  const o1 = c.w5 * a_h1 + c.w6 * a_h2 + c.b2;
  const o2 = c.w7 * a_h1 + c.w8 * a_h2 + c.b2;
  const a_o1 = sigmoid(o1),
    a_o2 = sigmoid(o2);
  const E1 = 0.5 * (c.t1 - a_o1) ** 2;
  const E2 = 0.5 * (c.t2 - a_o2) ** 2;
  return { h1, a_h1, h2, a_h2, o1, a_o1, o2, a_o2, E1, E2, E_total: E1 + E2 };
}

export function gradients(c: Net222Config, f: Forward = forward(c)): Gradients {
  const d1 = (f.a_o1 - c.t1) * f.a_o1 * (1 - f.a_o1);
  const d2 = (f.a_o2 - c.t2) * f.a_o2 * (1 - f.a_o2);
  const eh1 = (d1 * c.w5 + d2 * c.w7) * f.a_h1 * (1 - f.a_h1);
  const eh2 = (d1 * c.w6 + d2 * c.w8) * f.a_h2 * (1 - f.a_h2);
  return {
    w1: eh1 * c.i1,
    w2: eh1 * c.i2,
    w3: eh2 * c.i1,
    w4: eh2 * c.i2,
    w5: d1 * f.a_h1,
    w6: d1 * f.a_h2,
    w7: d2 * f.a_h1,
    w8: d2 * f.a_h2,
  };
}

/**
 * The size of the terms each gradient is made of (the "terms" scale of tolerance.ts, which calls this with the
 * precision's `aError`): ∂E/∂w = δ·x is ONE product, so its error is relative to |δ|·max|x| of the neuron w
 * feeds — never another neuron's (the hidden gradients are ~10× smaller than the output ones) — where
 *  - a hidden δ = (δ_o1·w + δ_o2·w′)·σ′ counts its two back-propagated terms in absolute value (they may cancel);
 *  - an output δ = (a − t)·σ′ counts the one cancellation of the network, a − t, as |a − t| + aError·|a|: the
 *    error of the difference is the rounding of a, not a fraction of |a − t| (near convergence a − t → 0).
 */
export function gradientScales(c: Net222Config, f: Forward = forward(c), aError = 0): Gradients {
  const d1 = (Math.abs(f.a_o1 - c.t1) + aError * Math.abs(f.a_o1)) * f.a_o1 * (1 - f.a_o1);
  const d2 = (Math.abs(f.a_o2 - c.t2) + aError * Math.abs(f.a_o2)) * f.a_o2 * (1 - f.a_o2);
  const xIn = Math.max(Math.abs(c.i1), Math.abs(c.i2));
  const xHid = Math.max(Math.abs(f.a_h1), Math.abs(f.a_h2));
  const h1 = (d1 * Math.abs(c.w5) + d2 * Math.abs(c.w7)) * f.a_h1 * (1 - f.a_h1) * xIn;
  const h2 = (d1 * Math.abs(c.w6) + d2 * Math.abs(c.w8)) * f.a_h2 * (1 - f.a_h2) * xIn;
  return { w1: h1, w2: h1, w3: h2, w4: h2, w5: d1 * xHid, w6: d1 * xHid, w7: d2 * xHid, w8: d2 * xHid };
}

/** One simultaneous update: every gradient from the current weights, then w ← w − η·∂E/∂w. */
export function updateWeights(w: Weights, g: Gradients, lr: number): Weights {
  return {
    w1: w.w1 - lr * g.w1,
    w2: w.w2 - lr * g.w2,
    w3: w.w3 - lr * g.w3,
    w4: w.w4 - lr * g.w4,
    w5: w.w5 - lr * g.w5,
    w6: w.w6 - lr * g.w6,
    w7: w.w7 - lr * g.w7,
    w8: w.w8 - lr * g.w8,
  };
}
