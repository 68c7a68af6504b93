import type { Arr } from "./arrays.ts";

/**
 * C[M,N] (+)= A[M,K] · B[N,K]ᵀ (+ bias[i] per row), all row-major with K contiguous in both operands, so the
 * inner loop is two unit-stride streams. Register-blocked 4 rows × 2 columns: 8 independent accumulators and
 * 6 loads per 8 multiply-adds, which is about as far as V8's scalar register allocator goes without spilling.
 * Sums are formed in doubles and rounded once on store.
 */
export function gemmNT(
  M: number,
  N: number,
  K: number,
  A: Arr,
  aOff: number,
  B: Arr,
  bOff: number,
  C: Arr | Float64Array,
  cOff: number,
  accumulate: boolean,
  bias: Arr | null,
): void {
  let i = 0;
  for (; i + 4 <= M; i += 4) {
    const a0 = aOff + i * K,
      a1 = a0 + K,
      a2 = a1 + K,
      a3 = a2 + K;
    const c0 = cOff + i * N,
      c1 = c0 + N,
      c2 = c1 + N,
      c3 = c2 + N;
    const z0 = bias ? bias[i]! : 0,
      z1 = bias ? bias[i + 1]! : 0,
      z2 = bias ? bias[i + 2]! : 0,
      z3 = bias ? bias[i + 3]! : 0;
    let j = 0;
    for (; j + 2 <= N; j += 2) {
      const b0 = bOff + j * K,
        b1 = b0 + K;
      let s00 = 0,
        s01 = 0,
        s10 = 0,
        s11 = 0,
        s20 = 0,
        s21 = 0,
        s30 = 0,
        s31 = 0;
      for (let k = 0; k < K; k++) {
        const x0 = B[b0 + k]!,
          x1 = B[b1 + k]!;
        const w0 = A[a0 + k]!,
          w1 = A[a1 + k]!,
          w2 = A[a2 + k]!,
          w3 = A[a3 + k]!;
        s00 += w0 * x0;
        s01 += w0 * x1;
        s10 += w1 * x0;
        s11 += w1 * x1;
        s20 += w2 * x0;
        s21 += w2 * x1;
        s30 += w3 * x0;
        s31 += w3 * x1;
      }
      if (accumulate) {
        C[c0 + j] = C[c0 + j]! + s00;
        C[c0 + j + 1] = C[c0 + j + 1]! + s01;
        C[c1 + j] = C[c1 + j]! + s10;
        C[c1 + j + 1] = C[c1 + j + 1]! + s11;
        C[c2 + j] = C[c2 + j]! + s20;
        C[c2 + j + 1] = C[c2 + j + 1]! + s21;
        C[c3 + j] = C[c3 + j]! + s30;
        C[c3 + j + 1] = C[c3 + j + 1]! + s31;
      } else {
        C[c0 + j] = s00 + z0;
        C[c0 + j + 1] = s01 + z0;
        C[c1 + j] = s10 + z1;
        C[c1 + j + 1] = s11 + z1;
        C[c2 + j] = s20 + z2;
        C[c2 + j + 1] = s21 + z2;
        C[c3 + j] = s30 + z3;
        C[c3 + j + 1] = s31 + z3;
      }
    }
    for (; j < N; j++) {
      const b0 = bOff + j * K;
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0;
      for (let k = 0; k < K; k++) {
        const x = B[b0 + k]!;
        s0 += A[a0 + k]! * x;
        s1 += A[a1 + k]! * x;
        s2 += A[a2 + k]! * x;
        s3 += A[a3 + k]! * x;
      }
      if (accumulate) {
        C[c0 + j] = C[c0 + j]! + s0;
        C[c1 + j] = C[c1 + j]! + s1;
        C[c2 + j] = C[c2 + j]! + s2;
        C[c3 + j] = C[c3 + j]! + s3;
      } else {
        C[c0 + j] = s0 + z0;
        C[c1 + j] = s1 + z1;
        C[c2 + j] = s2 + z2;
        C[c3 + j] = s3 + z3;
      }
    }
  }
  for (; i < M; i++) {
    const a0 = aOff + i * K,
      c0 = cOff + i * N,
      z = bias ? bias[i]! : 0;
    for (let j = 0; j < N; j++) {
      const b0 = bOff + j * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += A[a0 + k]! * B[b0 + k]!;
      if (accumulate) C[c0 + j] = C[c0 + j]! + s;
      else C[c0 + j] = s + z;
    }
  }
}
