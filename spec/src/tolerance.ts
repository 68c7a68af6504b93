import { z } from "zod";
import type { Net222Config } from "./net222/config.ts";
import { gradientScales, type Forward, type Gradients } from "./net222/formulas.ts";

/**
 * The tolerance policy, in one place. A backend declares its precision; the suite picks the tolerance from it.
 * Never loosen a tolerance for one backend: declare a different precision instead. The same rules hold for every
 * backend and every golden case, committed or fresh (`nnspec calibrate` measures false alarms on fresh ones).
 *
 * A value passes when |actual − expected| ≤ atol + rtol · scale, where scale is
 *  - "elementwise": |expected| of that element (activations such as gap and logits, losses, log-probs, 2-2-2
 *    forward quantities, BN running statistics, parameters the model was created from);
 *  - "spread" (BN running_mean): |expected| + √(running_var of the same channel). A batch mean is a sum of
 *    values spread by σ that may cancel to near 0; its rounding is relative to the values (≲ |mean| + σ), not
 *    to the mean (measured: a running mean of −0.0035 off by 3e-4 of itself, 0.8 of the elementwise allowance,
 *    on a correct float32 backend);
 *  - "tensor-max":  max |expected| over the tensor — the CNN's BatchNorm-normalised feature maps block1–9, pool1,
 *    pool2, whose near-zero entries carry the cancellation noise of x − mean (two correct float64
 *    implementations differ there by ~1e-14 absolute, 4× the elementwise float64 allowance);
 *  - gradients: the size of the terms they are made of, per group of parameters that share one
 *    back-propagated signal δ — never another group's, and never the element's own size (a gradient may be
 *    exactly zero in theory):
 *      · "layer-max" (CNN): max |expected| over every gradient of the parameter's layer, weight and bias
 *        together. Each is a sum over the layer's δ tensor (∂L/∂W = Σ δ·x, ∂L/∂b = Σ δ), whose rounding is a few
 *        u times Σ|δ|·|x|: a property of the layer. A gradient that is exactly zero in theory (a conv bias
 *        feeding a train-mode BatchNorm, whose backward makes Σ_i δ_i = 0) is in float32 the rounding residue
 *        of that cancelling sum, ≲ c·u·Σ|δ| with u = 2⁻²⁴; measured with PyTorch float32 on 10 fresh cases
 *        (batch 2–16; randn, MNIST, synthetic inputs): c ≤ 4 and Σ|δ| ≤ 35 × the layer's largest weight
 *        gradient, so the residue is ≤ 1e-5 of the layer scale, 10× inside rtol. (The old per-tensor scale,
 *        ≈ 1e-17 for these tensors, left only atol 1e-7, which PyTorch float32 exceeded by 2×.)
 *      · "terms" (2-2-2, net222GradientScales): ∂E/∂w = δ·x is one product, so its error is relative to
 *        |δ|·max|x| of the neuron w feeds; a hidden δ counts its two back-propagated terms in absolute value,
 *        an output δ its one cancelling difference a − t as |a − t| + 8u/rtol·|a| (the difference carries the
 *        rounding of a = σ(o), ≲ 8u·|a|, whatever |a − t| is: near convergence that is most of the error;
 *        measured ≤ 0.5u·|a| on tfjs-wasm and gpujs). Scaling all eight gradients by the largest (the output
 *        layer's, ~10× the hidden ones) let the class-sheet slip — a_h1(1 − a_h1) in ∂E/∂w3, ∂E/∂w4, 2.6e-4 of
 *        those gradients — pass at float32 (0.3×); per layer it would sit at 1.1×, per neuron it fails at 2.6×.
 *  - "after SGD steps": parameters after k steps of SGD with momentum m and learning rate lr from known values
 *    p0 (sgdStepsComparison). A float32 backend's p_k differs from the float64 golden by its storage rounding,
 *    ≤ 2k·u·(|p0| + |p_k|) (one rounding of p0, two per update, |lr·buf| ≤ |p0| + |p_k|), plus the gradient
 *    errors the gradient checks allow, carried by the optimizer: step j's gradient enters every later update
 *    with weight m^(t−j), so its coefficient in p_k is lr·Σ_j Σ_{t≥j} m^(t−j) (= lr·(2 + m) for k = 2). That
 *    bound is ~100× below the effect of ignoring weight decay 5e-4 (lr·wd·(2 + m)·|p|), which the old
 *    elementwise rtol 1e-4 on parameters could not see at float32.
 *  - "update": one SGD update recomputed by the judge from the backend's OWN gradients and parameters
 *    (compareSgdUpdate). Nothing but storage rounding separates the two — a few u of each tensor the update
 *    reads or writes — so 8u·(sum of their |values|) is the allowance, and a changed optimizer shows at any
 *    precision: ignoring weight decay 5e-4 moves a parameter by lr·wd·|p| = 2.5e-5·|p|, ~25× that at float32.
 *    Being judged on its own gradients, this check cannot be upset by a ReLU or max-pool decision that a
 *    float32 forward takes the other way than the float64 golden.
 * Non-finite values are strict: NaN matches only NaN, +Inf only +Inf; a non-finite actual against a finite
 * expected value always fails.
 */
export const precisionSchema = z.enum(["float64", "float32", "float16"]);
export type Precision = z.infer<typeof precisionSchema>;

export interface Tolerance {
  readonly rtol: number;
  readonly atol: number;
}

export type QuantityKind = "value" | "gradient";

/**
 * float64: 1e-12 relative leaves room for a few hundred ulps of re-association (two correct float64
 * implementations never agree to the last bit once (a − t) cancels), while any real formula error is ≥ 1e-6.
 * float32: 1e-4 relative on values (~1700 u: the error of a 30-layer forward and backward); gradients 1e-4 of
 * their scale (see above) — measured worst: tfjs-wasm 0.46 of it on conv1.weight with MNIST input at batch 16
 * (the constant background makes conv1's gradient a cancelling sum), PyTorch float32 0.07. The gradient atol is
 * only a floor for a group whose every gradient is zero in theory (none in these networks): 1e-10, below the
 * smallest scale of any golden (the converged 2-2-2 output layer, ~2e-5 × 1e-4); 1e-7 there used to hide the
 * 2-2-2 slips, whose hidden gradients are ~1e-3.
 * float16: 1e-2, the half-precision analogue (tfjs uses 1e-1 absolute for float16 test backends).
 */
export const TOLERANCE: Readonly<Record<Precision, Readonly<Record<QuantityKind, Tolerance>>>> = {
  float64: { value: { rtol: 1e-12, atol: 1e-15 }, gradient: { rtol: 1e-12, atol: 1e-15 } },
  float32: { value: { rtol: 1e-4, atol: 1e-6 }, gradient: { rtol: 1e-4, atol: 1e-10 } },
  float16: { value: { rtol: 1e-2, atol: 1e-3 }, gradient: { rtol: 1e-2, atol: 1e-4 } },
};

/** Unit roundoff u: the relative error of one correctly rounded operation at each precision (2⁻⁵³, 2⁻²⁴, 2⁻¹¹). */
export const UNIT_ROUNDOFF: Readonly<Record<Precision, number>> = {
  float64: 2 ** -53,
  float32: 2 ** -24,
  float16: 2 ** -11,
};

export function toleranceFor(precision: Precision, kind: QuantityKind): Tolerance {
  return TOLERANCE[precision][kind];
}

/** The "layer-max" scale: the largest |value| over all gradient tensors of one layer (or group). */
export function layerScale(tensors: Iterable<ArrayLike<number>>): number {
  let m = 0;
  for (const t of tensors)
    for (let i = 0; i < t.length; i++) {
      const v = Math.abs(t[i]!);
      if (v > m) m = v;
    }
  return m;
}

export interface Comparison {
  readonly pass: boolean;
  readonly count: number;
  /** Largest |a − e| / (atol + rtol·scale) over the tensor: ≤ 1 passes. */
  readonly worstRatio: number;
  /** Largest |a − e| / max(|e|, tiny) — the plain relative error, for reports. */
  readonly worstRelative: number;
  readonly worstAbsolute: number;
  readonly worstIndex: number;
  readonly actualAtWorst: number;
  readonly expectedAtWorst: number;
  readonly nonFiniteMismatch: number;
}

function sameNonFinite(a: number, e: number): boolean {
  if (Number.isNaN(e)) return Number.isNaN(a);
  return a === e;
}

/**
 * The "terms" scales of the eight 2-2-2 gradients at `c` (forward values `f`), for a backend of `precision`:
 * formulas.ts gradientScales with the rounding of a = σ(o) in a − t counted as 8u·|a|, in units of rtol.
 */
export function net222GradientScales(precision: Precision, c: Net222Config, f?: Forward): Gradients {
  return gradientScales(c, f, (8 * UNIT_ROUNDOFF[precision]) / TOLERANCE[precision].gradient.rtol);
}

/** A gradient scale: one number for the whole tensor (layer-max), or one per element (terms). */
export type GradientScale = number | ArrayLike<number>;

const scaleAt = (s: GradientScale, i: number): number => (typeof s === "number" ? s : s[i]!);

/**
 * Compare two equally long sequences of numbers under a tolerance. Element i is scaled by `scale` when given (a
 * layer's scale from `layerScale`, per-element term sizes, a spread); otherwise kind "value" scales by the
 * element's own |expected| and kind "gradient" by the tensor's max |expected| (the "tensor-max" rule).
 */
export function compareValues(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance,
  kind: QuantityKind = "value",
  scale?: GradientScale,
): Comparison {
  if (kind === "value" && scale === undefined)
    return compareWithin(actual, expected, (_i, e) => tol.atol + tol.rtol * Math.abs(e));
  const s = scale ?? layerScale([expected]);
  return compareWithin(actual, expected, (i) => tol.atol + tol.rtol * scaleAt(s, i));
}

export interface SgdStepsTolerance {
  readonly precision: Precision;
  /** Number of SGD steps between `before` and the compared values. */
  readonly steps: number;
  readonly lr: number;
  readonly momentum: number;
  /** The scale of the gradients that drove the steps (that of the step-1 golden gradients, as compareValues takes it). */
  readonly gradientScale: GradientScale;
}

/** lr times the weight of the gradient errors in p_k: Σ_{j=1..k} Σ_{t=j..k} m^(t−j). */
function momentumCarry(steps: number, momentum: number): number {
  let c = 0;
  for (let j = 1; j <= steps; j++) for (let t = j; t <= steps; t++) c += momentum ** (t - j);
  return c;
}

/**
 * Parameters after `steps` SGD steps from `before`: the "after SGD steps" rule above, per element
 * 2k·u·(|p0| + |p_k|) + lr·carry·(gradient atol + rtol·gradientScale).
 */
export function compareAfterSgdSteps(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  before: ArrayLike<number>,
  o: SgdStepsTolerance,
): Comparison {
  if (before.length !== expected.length)
    throw new RangeError(`compareAfterSgdSteps: ${before.length} starting values for ${expected.length} expected`);
  const g = toleranceFor(o.precision, "gradient");
  const storage = 2 * o.steps * UNIT_ROUNDOFF[o.precision];
  const carry = Math.abs(o.lr) * momentumCarry(o.steps, o.momentum);
  return compareWithin(
    actual,
    expected,
    (i, e) => storage * (Math.abs(before[i]!) + Math.abs(e)) + carry * (g.atol + g.rtol * scaleAt(o.gradientScale, i)),
  );
}

/** Rounding units a recomputed SGD update may differ by, per unit of the |values| it reads and writes. */
export const UPDATE_ULPS = 8;

/**
 * The "update" rule: `actual` against the judge's recomputation `expected` of one SGD update from the backend's
 * own tensors; `sizes` are the tensors the update reads and writes (previous parameters, new parameters, …).
 */
export function compareSgdUpdate(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  sizes: readonly ArrayLike<number>[],
  precision: Precision,
): Comparison {
  const c = UPDATE_ULPS * UNIT_ROUNDOFF[precision];
  return compareWithin(actual, expected, (i) => {
    let s = 0;
    for (const t of sizes) s += Math.abs(t[i]!);
    return c * s;
  });
}

/** The comparison every rule above reduces to: element i passes when |a − e| ≤ allowed(i, e). */
export function compareWithin(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  allowedAt: (i: number, e: number) => number,
): Comparison {
  if (actual.length !== expected.length) {
    return {
      pass: false,
      count: actual.length,
      worstRatio: Infinity,
      worstRelative: Infinity,
      worstAbsolute: Infinity,
      worstIndex: -1,
      actualAtWorst: NaN,
      expectedAtWorst: NaN,
      nonFiniteMismatch: 0,
    };
  }
  let worstRatio = 0,
    worstRelative = 0,
    worstAbsolute = 0,
    worstIndex = -1,
    nonFiniteMismatch = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!,
      e = expected[i]!;
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (!sameNonFinite(a, e)) {
        nonFiniteMismatch++;
        if (worstRatio !== Infinity) {
          worstRatio = Infinity;
          worstIndex = i;
        }
      }
      continue;
    }
    const diff = Math.abs(a - e);
    const ratio = diff === 0 ? 0 : diff / allowedAt(i, e);
    const rel = diff / Math.max(Math.abs(e), Number.MIN_VALUE);
    if (ratio > worstRatio || worstIndex < 0) {
      worstRatio = ratio;
      worstIndex = i;
    }
    worstRelative = Math.max(worstRelative, diff === 0 ? 0 : rel);
    worstAbsolute = Math.max(worstAbsolute, diff);
  }
  const wi = Math.max(worstIndex, 0);
  return {
    pass: nonFiniteMismatch === 0 && worstRatio <= 1,
    count: expected.length,
    worstRatio,
    worstRelative,
    worstAbsolute,
    worstIndex,
    actualAtWorst: expected.length ? actual[wi]! : NaN,
    expectedAtWorst: expected.length ? expected[wi]! : NaN,
    nonFiniteMismatch,
  };
}
