import type { KernelThis } from "../runtime.ts";

/**
 * The CNN's gpu.js kernel bodies. gpu.js translates each body's source (to GLSL, WebAssembly or JS), so
 * they use only what it supports: flat array reads, Math.*, loops bounded by constants, no closures.
 * Every output is a flat NCHW array; a thread decodes its coordinates from `this.thread.x`.
 * Integer division is written floor((a + 0.5) / b): exact whether the target divides in float or int.
 */

// ---------------------------------------------------------------- convolution (3×3, padding 1, stride 1)
// The convolutions read zero-padded planes ((H+2)×(W+2), from `pad`), so their inner loops have no bounds
// tests and the 3×3 taps are unrolled: on the webasm target this runs about twice as fast as a guarded loop.

/** Zero-pads each H×W plane by one cell on every side. */
export function pad(this: KernelThis<"H" | "W">, x: Float32Array): number {
  const H = this.constants.H,
    W = this.constants.W;
  const W2 = W + 2,
    H2 = H + 2;
  const idx = this.thread.x;
  const r = Math.floor((idx + 0.5) / W2);
  const xx = idx - r * W2;
  const plane = Math.floor((r + 0.5) / H2);
  const yy = r - plane * H2;
  if (yy < 1 || yy > H || xx < 1 || xx > W) return 0;
  return x[(plane * H + yy - 1) * W + xx - 1]!;
}

/** out[i, co, y, x] = b[co] + Σ_ci,ky,kx x[i, ci, y+ky−1, x+kx−1] · w[co, ci, ky, kx], from the padded input xp. */
export function convForward(
  this: KernelThis<"Cin" | "Cout" | "H" | "W">,
  xp: Float32Array,
  w: Float32Array,
  b: Float32Array,
): number {
  const H = this.constants.H,
    W = this.constants.W,
    Cin = this.constants.Cin,
    Cout = this.constants.Cout;
  const W2 = W + 2,
    H2 = H + 2;
  const idx = this.thread.x;
  const r1 = Math.floor((idx + 0.5) / W);
  const px = idx - r1 * W;
  const r2 = Math.floor((r1 + 0.5) / H);
  const py = r1 - r2 * H;
  const i = Math.floor((r2 + 0.5) / Cout);
  const co = r2 - i * Cout;
  let s = 0;
  for (let ci = 0; ci < Cin; ci++) {
    const a = ((i * Cin + ci) * H2 + py) * W2 + px;
    const k = (co * Cin + ci) * 9;
    s +=
      xp[a]! * w[k]! +
      xp[a + 1]! * w[k + 1]! +
      xp[a + 2]! * w[k + 2]! +
      xp[a + W2]! * w[k + 3]! +
      xp[a + W2 + 1]! * w[k + 4]! +
      xp[a + W2 + 2]! * w[k + 5]! +
      xp[a + 2 * W2]! * w[k + 6]! +
      xp[a + 2 * W2 + 1]! * w[k + 7]! +
      xp[a + 2 * W2 + 2]! * w[k + 8]!;
  }
  return s + b[co]!;
}

/** Input gradient from the padded output gradient dyp: dx[i, ci, y, x] = Σ_co,ky,kx dy[i, co, y−ky+1, x−kx+1] · w[co, ci, ky, kx]. */
export function convInputGrad(
  this: KernelThis<"Cin" | "Cout" | "H" | "W">,
  dyp: Float32Array,
  w: Float32Array,
): number {
  const H = this.constants.H,
    W = this.constants.W,
    Cin = this.constants.Cin,
    Cout = this.constants.Cout;
  const W2 = W + 2,
    H2 = H + 2;
  const idx = this.thread.x;
  const r1 = Math.floor((idx + 0.5) / W);
  const px = idx - r1 * W;
  const r2 = Math.floor((r1 + 0.5) / H);
  const py = r1 - r2 * H;
  const i = Math.floor((r2 + 0.5) / Cin);
  const ci = r2 - i * Cin;
  let s = 0;
  for (let co = 0; co < Cout; co++) {
    const a = ((i * Cout + co) * H2 + py) * W2 + px;
    const k = (co * Cin + ci) * 9;
    s +=
      dyp[a + 2 * W2 + 2]! * w[k]! +
      dyp[a + 2 * W2 + 1]! * w[k + 1]! +
      dyp[a + 2 * W2]! * w[k + 2]! +
      dyp[a + W2 + 2]! * w[k + 3]! +
      dyp[a + W2 + 1]! * w[k + 4]! +
      dyp[a + W2]! * w[k + 5]! +
      dyp[a + 2]! * w[k + 6]! +
      dyp[a + 1]! * w[k + 7]! +
      dyp[a]! * w[k + 8]!;
  }
  return s;
}

/**
 * Filter gradient of one image, from the padded input xp: part[i, co, ci, ky, kx] = Σ_y,x dy[i, co, y, x] ·
 * x[i, ci, y+ky−1, x+kx−1]. Summed over the batch by `batchSum`: two-level summation keeps float32 error
 * small and the work parallel. The row loop is unrolled by 7 (every plane width of this CNN is a multiple of
 * 7), which nearly halves its time on webasm; `convFilterGradPartAnyWidth` is the plain loop.
 */
export function convFilterGradPart(
  this: KernelThis<"Cin" | "Cout" | "H" | "W">,
  dy: Float32Array,
  xp: Float32Array,
): number {
  const H = this.constants.H,
    W = this.constants.W,
    Cin = this.constants.Cin,
    Cout = this.constants.Cout;
  const W2 = W + 2,
    H2 = H + 2;
  const idx = this.thread.x;
  const r1 = Math.floor((idx + 0.5) / 9);
  const k = idx - r1 * 9;
  const ky = Math.floor((k + 0.5) / 3);
  const kx = k - ky * 3;
  const r2 = Math.floor((r1 + 0.5) / Cin);
  const ci = r1 - r2 * Cin;
  const i = Math.floor((r2 + 0.5) / Cout);
  const co = r2 - i * Cout;
  let s = 0;
  for (let y = 0; y < H; y++) {
    const g = ((i * Cout + co) * H + y) * W;
    const a = ((i * Cin + ci) * H2 + y + ky) * W2 + kx;
    for (let xo = 0; xo < W; xo += 7) {
      s +=
        dy[g + xo]! * xp[a + xo]! +
        dy[g + xo + 1]! * xp[a + xo + 1]! +
        dy[g + xo + 2]! * xp[a + xo + 2]! +
        dy[g + xo + 3]! * xp[a + xo + 3]! +
        dy[g + xo + 4]! * xp[a + xo + 4]! +
        dy[g + xo + 5]! * xp[a + xo + 5]! +
        dy[g + xo + 6]! * xp[a + xo + 6]!;
    }
  }
  return s;
}

export function convFilterGradPartAnyWidth(
  this: KernelThis<"Cin" | "Cout" | "H" | "W">,
  dy: Float32Array,
  xp: Float32Array,
): number {
  const H = this.constants.H,
    W = this.constants.W,
    Cin = this.constants.Cin,
    Cout = this.constants.Cout;
  const W2 = W + 2,
    H2 = H + 2;
  const idx = this.thread.x;
  const r1 = Math.floor((idx + 0.5) / 9);
  const k = idx - r1 * 9;
  const ky = Math.floor((k + 0.5) / 3);
  const kx = k - ky * 3;
  const r2 = Math.floor((r1 + 0.5) / Cin);
  const ci = r1 - r2 * Cin;
  const i = Math.floor((r2 + 0.5) / Cout);
  const co = r2 - i * Cout;
  let s = 0;
  for (let y = 0; y < H; y++) {
    const g = ((i * Cout + co) * H + y) * W;
    const a = ((i * Cin + ci) * H2 + y + ky) * W2 + kx;
    let row = 0;
    for (let xo = 0; xo < W; xo++) row += dy[g + xo]! * xp[a + xo]!;
    s += row;
  }
  return s;
}

// ---------------------------------------------------------------- reductions

/**
 * out[j] = scale · Σ x over plane j (R rows of L): per-plane sums (BN partial sums, conv bias grads, GAP with
 * scale 1/P). The reductions here are Kahan-compensated: a conv bias gradient before BatchNorm is a sum that
 * is exactly 0, and float32 must land within the suite's absolute allowance of it.
 */
export function planeSum(this: KernelThis<"R" | "L">, x: Float32Array, scale: number): number {
  const R = this.constants.R,
    L = this.constants.L;
  const base = this.thread.x * R * L;
  let s = 0,
    comp = 0;
  for (let r = 0; r < R; r++) {
    for (let p = 0; p < L; p++) {
      const y = x[base + r * L + p]! - comp;
      const t = s + y;
      comp = t - s - y;
      s = t;
    }
  }
  return s * scale;
}

/** out[c] = scale · Σ_i part[i·C + c]: sums per-image partials over the batch. */
export function batchSum(this: KernelThis<"N" | "C">, part: Float32Array, scale: number): number {
  const N = this.constants.N,
    C = this.constants.C;
  const c = this.thread.x;
  let s = 0,
    comp = 0;
  for (let i = 0; i < N; i++) {
    const y = part[i * C + c]! - comp;
    const t = s + y;
    comp = t - s - y;
    s = t;
  }
  return s * scale;
}

/**
 * Per-plane deviation sums from a first-pass mean m, layout [i][2C]: t < C → Σ (x − m[c]), t ≥ C → Σ (x − m[c])².
 * The first sum corrects the float32 mean (corrected two-pass algorithm): m + Σ(x − m)/count is the mean to
 * nearly twice float32's digits, which keeps Σ over a channel of BN's input gradient at its exact value 0 —
 * the conv bias gradients before BatchNorm are that sum.
 */
export function planeDeviations(this: KernelThis<"C" | "R" | "L">, x: Float32Array, mean: Float32Array): number {
  const C = this.constants.C,
    R = this.constants.R,
    L = this.constants.L;
  const idx = this.thread.x;
  const C2 = 2 * C;
  const i = Math.floor((idx + 0.5) / C2);
  const t = idx - i * C2;
  const sq = t >= C ? 1 : 0;
  const c = t - sq * C;
  const base = (i * C + c) * R * L;
  const m = mean[c]!;
  let s = 0,
    comp = 0;
  for (let r = 0; r < R; r++) {
    for (let p = 0; p < L; p++) {
      const d = x[base + r * L + p]! - m;
      const y = (sq > 0 ? d * d : d) - comp;
      const u = s + y;
      comp = u - s - y;
      s = u;
    }
  }
  return s;
}

// ---------------------------------------------------------------- batch norm (+ ReLU)
// Train-mode statistics live in one tensor S = [hi(C) | lo(C) | var(C)]: the mean as hi + lo (hi the plain
// float32 mean, lo its correction) and the biased batch variance. Deviations are formed as (x − hi) − lo.

/** S from the first-pass mean and the reduced deviation sums dev = [Σd/count | Σd²/count]. */
export function bnStats(this: KernelThis<"C">, mean: Float32Array, dev: Float32Array): number {
  const C = this.constants.C;
  const t = this.thread.x;
  if (t < C) return mean[t]!;
  if (t < 2 * C) return dev[t - C]!;
  const lo = dev[t - 2 * C]!;
  return dev[t - C]! - lo * lo;
}

/** New running stats [mean(C) | var(C)]: momentum blend with the batch mean and the unbiased batch variance. */
export function bnRunningUpdate(
  this: KernelThis<"C" | "momentum">,
  stats: Float32Array,
  running: Float32Array,
  count: number,
): number {
  const C = this.constants.C,
    m = this.constants.momentum;
  const t = this.thread.x;
  if (t < C) return m * (stats[t]! + stats[C + t]!) + (1 - m) * running[t]!;
  return m * (stats[C + t]! * (count / (count - 1))) + (1 - m) * running[t]!;
}

/** Train mode: relu(((x − hi) − lo) · invstd · gamma + beta) with the batch statistics S; affine = [gamma(C) | beta(C)]. */
export function bnReluTrain(
  this: KernelThis<"C" | "P" | "eps">,
  x: Float32Array,
  stats: Float32Array,
  affine: Float32Array,
): number {
  const C = this.constants.C,
    P = this.constants.P;
  const idx = this.thread.x;
  const r = Math.floor((idx + 0.5) / P);
  const c = r - Math.floor((r + 0.5) / C) * C;
  const invstd = 1 / Math.sqrt(stats[2 * C + c]! + this.constants.eps);
  const d = x[idx]! - stats[c]! - stats[C + c]!;
  return Math.max(d * invstd * affine[c]! + affine[C + c]!, 0);
}

/** Eval mode: relu(BN(x)) with the running buffer [mean(C) | var(C)], folded into one multiply-add as PyTorch does. */
export function bnReluEval(
  this: KernelThis<"C" | "P" | "eps">,
  x: Float32Array,
  running: Float32Array,
  affine: Float32Array,
): number {
  const C = this.constants.C,
    P = this.constants.P;
  const idx = this.thread.x;
  const r = Math.floor((idx + 0.5) / P);
  const c = r - Math.floor((r + 0.5) / C) * C;
  const alpha = affine[c]! / Math.sqrt(running[C + c]! + this.constants.eps);
  return Math.max(x[idx]! * alpha + (affine[C + c]! - running[c]! * alpha), 0);
}

/**
 * Per-plane partials for BN backward through the ReLU, layout [i][2C]: t < C → Σ g', t ≥ C → Σ (x − mean)·g',
 * where g' = g where the block output a > 0, else 0.
 */
export function bnBackwardPart(
  this: KernelThis<"C" | "R" | "L">,
  g: Float32Array,
  a: Float32Array,
  x: Float32Array,
  stats: Float32Array,
): number {
  const C = this.constants.C,
    R = this.constants.R,
    L = this.constants.L;
  const idx = this.thread.x;
  const C2 = 2 * C;
  const i = Math.floor((idx + 0.5) / C2);
  const t = idx - i * C2;
  const dot = t >= C ? 1 : 0;
  const c = t - dot * C;
  const base = (i * C + c) * R * L;
  const hi = stats[c]!,
    lo = stats[C + c]!;
  let s = 0,
    comp = 0;
  for (let r = 0; r < R; r++) {
    for (let p = 0; p < L; p++) {
      const q = base + r * L + p;
      const gp = a[q]! > 0 ? g[q]! : 0;
      const y = (dot > 0 ? (x[q]! - hi - lo) * gp : gp) - comp;
      const u = s + y;
      comp = u - s - y;
      s = u;
    }
  }
  return s;
}

/** BN parameter gradients [dgamma(C) | dbeta(C)] from the reduced sums red = [Σg'(C) | Σ(x−mean)g'(C)]. */
export function bnParamGrad(this: KernelThis<"C" | "eps">, red: Float32Array, stats: Float32Array): number {
  const C = this.constants.C;
  const t = this.thread.x;
  if (t < C) return red[C + t]! / Math.sqrt(stats[2 * C + t]! + this.constants.eps);
  return red[t - C]!;
}

/** BN input gradient through the ReLU: (g' − Σg'/m − (x − mean)·Σ(x−mean)g'·invstd²/m) · invstd · gamma. */
export function bnInputGrad(
  this: KernelThis<"C" | "P" | "eps">,
  g: Float32Array,
  a: Float32Array,
  x: Float32Array,
  stats: Float32Array,
  red: Float32Array,
  affine: Float32Array,
  count: number,
): number {
  const C = this.constants.C,
    P = this.constants.P;
  const idx = this.thread.x;
  const r = Math.floor((idx + 0.5) / P);
  const c = r - Math.floor((r + 0.5) / C) * C;
  const invstd = 1 / Math.sqrt(stats[2 * C + c]! + this.constants.eps);
  const gp = a[idx]! > 0 ? g[idx]! : 0;
  const k = (red[C + c]! * invstd * invstd) / count;
  return (gp - red[c]! / count - (x[idx]! - stats[c]! - stats[C + c]!) * k) * invstd * affine[c]!;
}

// ---------------------------------------------------------------- max-pool 2×2, dropout, GAP

/** 2×2 max-pool; the window is scanned row-major and only a strictly larger value wins (PyTorch's first max). */
export function maxPoolForward(this: KernelThis<"H" | "W">, x: Float32Array): number {
  const H = this.constants.H,
    W = this.constants.W;
  const Wo = Math.floor(W / 2),
    Ho = Math.floor(H / 2);
  const idx = this.thread.x;
  const r = Math.floor((idx + 0.5) / Wo);
  const xo = idx - r * Wo;
  const plane = Math.floor((r + 0.5) / Ho);
  const yo = r - plane * Ho;
  const base = (plane * H + 2 * yo) * W + 2 * xo;
  let best = x[base]!;
  const v1 = x[base + 1]!;
  if (v1 > best) best = v1;
  const v2 = x[base + W]!;
  if (v2 > best) best = v2;
  const v3 = x[base + W + 1]!;
  if (v3 > best) best = v3;
  return best;
}

/** Max-pool backward, gather form: an input cell gets its window's gradient when it is that window's first maximum. */
export function maxPoolBackward(this: KernelThis<"H" | "W">, dy: Float32Array, x: Float32Array): number {
  const H = this.constants.H,
    W = this.constants.W;
  const Wo = Math.floor(W / 2),
    Ho = Math.floor(H / 2);
  const idx = this.thread.x;
  const r = Math.floor((idx + 0.5) / W);
  const px = idx - r * W;
  const plane = Math.floor((r + 0.5) / H);
  const py = r - plane * H;
  const yo = Math.floor((py + 0.5) / 2),
    xo = Math.floor((px + 0.5) / 2);
  if (yo >= Ho || xo >= Wo) return 0;
  const base = (plane * H + 2 * yo) * W + 2 * xo;
  let best = x[base]!;
  let at = 0;
  const v1 = x[base + 1]!;
  if (v1 > best) {
    best = v1;
    at = 1;
  }
  const v2 = x[base + W]!;
  if (v2 > best) {
    best = v2;
    at = 2;
  }
  const v3 = x[base + W + 1]!;
  if (v3 > best) {
    best = v3;
    at = 3;
  }
  const mine = (py - 2 * yo) * 2 + (px - 2 * xo);
  return mine === at ? dy[(plane * Ho + yo) * Wo + xo]! : 0;
}

/** Elementwise product: dropout forward and backward with the mask (0 or 1/(1−p) per element). */
export function multiply(this: KernelThis<never>, x: Float32Array, mask: Float32Array): number {
  return x[this.thread.x]! * mask[this.thread.x]!;
}

/** GAP backward: every cell of a plane gets the plane's gradient / P. */
export function gapBackward(this: KernelThis<"P">, dy: Float32Array): number {
  const P = this.constants.P;
  return dy[Math.floor((this.thread.x + 0.5) / P)]! / P;
}

// ---------------------------------------------------------------- linear, log-softmax, NLL

/** logits[i, o] = b[o] + Σ_k x[i, k] · w[o, k]. */
export function linearForward(this: KernelThis<"I" | "O">, x: Float32Array, w: Float32Array, b: Float32Array): number {
  const I = this.constants.I,
    O = this.constants.O;
  const idx = this.thread.x;
  const i = Math.floor((idx + 0.5) / O);
  const o = idx - i * O;
  let s = 0;
  for (let k = 0; k < I; k++) s += x[i * I + k]! * w[o * I + k]!;
  return b[o]! + s;
}

/** dW[o, k] = Σ_i dy[i, o] · x[i, k]. */
export function linearWeightGrad(this: KernelThis<"N" | "I" | "O">, dy: Float32Array, x: Float32Array): number {
  const N = this.constants.N,
    I = this.constants.I,
    O = this.constants.O;
  const idx = this.thread.x;
  const o = Math.floor((idx + 0.5) / I);
  const k = idx - o * I;
  let s = 0;
  for (let i = 0; i < N; i++) s += dy[i * O + o]! * x[i * I + k]!;
  return s;
}

/** dx[i, k] = Σ_o dy[i, o] · w[o, k]. */
export function linearInputGrad(this: KernelThis<"I" | "O">, dy: Float32Array, w: Float32Array): number {
  const I = this.constants.I,
    O = this.constants.O;
  const idx = this.thread.x;
  const i = Math.floor((idx + 0.5) / I);
  const k = idx - i * I;
  let s = 0;
  for (let o = 0; o < O; o++) s += dy[i * O + o]! * w[o * I + k]!;
  return s;
}

/** Row-wise log-softmax: z − max − log Σ exp(z − max). */
export function logSoftmax(this: KernelThis<"K">, z: Float32Array): number {
  const K = this.constants.K;
  const idx = this.thread.x;
  const row = Math.floor((idx + 0.5) / K) * K;
  let m = z[row]!;
  for (let j = 1; j < K; j++) m = Math.max(m, z[row + j]!);
  let s = 0;
  for (let j = 0; j < K; j++) s += Math.exp(z[row + j]! - m);
  return z[idx]! - m - Math.log(s);
}

/** Mean negative log-likelihood (one cell): −(1/N) Σ_i logProbs[i, label_i]. */
export function nllLoss(this: KernelThis<"N" | "K">, logProbs: Float32Array, labels: Float32Array): number {
  const N = this.constants.N,
    K = this.constants.K;
  let s = 0;
  for (let i = 0; i < N; i++) s += logProbs[i * K + labels[i]!]!;
  return -s / N;
}

/** Gradient of the mean NLL through log-softmax: (exp(logProbs) − onehot(label)) / N. */
export function nllLogSoftmaxGrad(this: KernelThis<"N" | "K">, logProbs: Float32Array, labels: Float32Array): number {
  const N = this.constants.N,
    K = this.constants.K;
  const idx = this.thread.x;
  const i = Math.floor((idx + 0.5) / K);
  const j = idx - i * K;
  const hit = labels[i]! === j ? 1 : 0;
  return (Math.exp(logProbs[idx]!) - hit) / N;
}

// ---------------------------------------------------------------- SGD with momentum and weight decay (optim.ts)

/** New momentum buffer: g + wd·p on the first step, else momentum·buf + g + wd·p. */
export function sgdMomentum(
  this: KernelThis<never>,
  p: Float32Array,
  g: Float32Array,
  buf: Float32Array,
  momentum: number,
  weightDecay: number,
  first: number,
): number {
  const idx = this.thread.x;
  const d = g[idx]! + weightDecay * p[idx]!;
  return first > 0.5 ? d : momentum * buf[idx]! + d;
}

/** p − lr · buf. */
export function sgdApply(this: KernelThis<never>, p: Float32Array, buf: Float32Array, lr: number): number {
  const idx = this.thread.x;
  return p[idx]! - lr * buf[idx]!;
}
