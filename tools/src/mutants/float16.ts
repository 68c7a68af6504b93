/**
 * Round a number to the nearest IEEE 754 half-precision value (ties to even; ±Infinity beyond 65504 rounding,
 * subnormals below 2⁻¹⁴), returned as a double. Node 20 has no Math.f16round.
 */
export function toFloat16(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity; // 65504 + half an ulp rounds up to infinity
  const e = Math.max(Math.floor(Math.log2(a)), -14);
  const quantum = 2 ** (e - 10);
  const q = a / quantum;
  let r = Math.round(q);
  if (r - q === 0.5 && r % 2 === 1) r -= 1; // Math.round sends .5 up; ties go to even
  return Math.sign(x) * r * quantum;
}

/** Round every element in place. */
export function roundArrayToFloat16(a: { length: number; [i: number]: number }): void {
  for (let i = 0; i < a.length; i++) a[i] = toFloat16(a[i]!);
}
