import { z } from "zod";

/**
 * The tolerance policy, in one place. A backend declares its precision; the suite picks the tolerance from it.
 * Never loosen a tolerance for one backend: declare a different precision instead.
 *
 * A value passes when |actual − expected| ≤ atol + rtol · scale, where scale is
 *  - "elementwise": |expected| of that element (activations such as gap and logits, losses, log-probs, 2-2-2 quantities, parameters);
 *  - "tensor-max":  max |expected| over the whole tensor (gradients, whose small entries carry only
 *                   cancellation noise at reduced precision; and the CNN's BatchNorm-normalised feature maps
 *                   block1–9, pool1, pool2, whose near-zero entries carry the cancellation noise of x − mean:
 *                   two correct float64 implementations differ there by ~1e-14 absolute, 4× the elementwise
 *                   float64 allowance). Compare these with kind "gradient".
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
 * float32: 1e-4 relative on values, gradients 1e-4 of the tensor's max |value| (the CNN issue's figure).
 * float16: 1e-2, the half-precision analogue (tfjs uses 1e-1 absolute for float16 test backends).
 */
export const TOLERANCE: Readonly<Record<Precision, Readonly<Record<QuantityKind, Tolerance>>>> = {
  float64: { value: { rtol: 1e-12, atol: 1e-15 }, gradient: { rtol: 1e-12, atol: 1e-15 } },
  float32: { value: { rtol: 1e-4, atol: 1e-6 }, gradient: { rtol: 1e-4, atol: 1e-7 } },
  float16: { value: { rtol: 1e-2, atol: 1e-3 }, gradient: { rtol: 1e-2, atol: 1e-4 } },
};

export function toleranceFor(precision: Precision, kind: QuantityKind): Tolerance {
  return TOLERANCE[precision][kind];
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

/** Compare two equally long sequences of numbers under a tolerance. */
export function compareValues(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: Tolerance,
  kind: QuantityKind = "value",
): Comparison {
  if (actual.length !== expected.length) {
    return { pass: false, count: actual.length, worstRatio: Infinity, worstRelative: Infinity, worstAbsolute: Infinity, worstIndex: -1, actualAtWorst: NaN, expectedAtWorst: NaN, nonFiniteMismatch: 0 };
  }
  let tensorMax = 0;
  if (kind === "gradient") for (let i = 0; i < expected.length; i++) tensorMax = Math.max(tensorMax, Math.abs(expected[i]!));
  let worstRatio = 0, worstRelative = 0, worstAbsolute = 0, worstIndex = -1, nonFiniteMismatch = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (!sameNonFinite(a, e)) {
        nonFiniteMismatch++;
        if (worstRatio !== Infinity) { worstRatio = Infinity; worstIndex = i; }
      }
      continue;
    }
    const diff = Math.abs(a - e);
    const scale = kind === "gradient" ? tensorMax : Math.abs(e);
    const ratio = diff / (tol.atol + tol.rtol * scale);
    const rel = diff / Math.max(Math.abs(e), Number.MIN_VALUE);
    if (ratio > worstRatio || worstIndex < 0) { worstRatio = ratio; worstIndex = i; }
    worstRelative = Math.max(worstRelative, diff === 0 ? 0 : rel);
    worstAbsolute = Math.max(worstAbsolute, diff);
  }
  const wi = Math.max(worstIndex, 0);
  return {
    pass: nonFiniteMismatch === 0 && worstRatio <= 1,
    count: expected.length,
    worstRatio, worstRelative, worstAbsolute, worstIndex,
    actualAtWorst: expected.length ? actual[wi]! : NaN,
    expectedAtWorst: expected.length ? expected[wi]! : NaN,
    nonFiniteMismatch,
  };
}
