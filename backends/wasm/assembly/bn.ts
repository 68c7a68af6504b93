// BatchNorm2d (batch statistics in train mode, running statistics in eval mode) fused with the ReLU after it.
//
// Sums over the batch: Σz (the mean) and Σg (the mean output gradient) add every element in f64x2, so the means
// are the exact means of the f32 values — the terms that cancel in the conv bias gradient Σdz then cancel to f64
// rounding, not to float32 noise. Sums that only scale (squared deviations, Σ g·(z − mean)) add one image row
// (≤ 28 pixels) in f32x4, then rows in f64x2. Each thread sums its own images into its `partial` slot; after a
// barrier every thread adds the slots in thread order, so all threads (and every run) get bit-identical results.
import { PIX } from "./memory-map";

/** Adds four f32x4 vectors (16 channels) into the 16 f64 sums at `acc64`. */
@inline function widenAdd(acc64: usize, v0: v128, v1: v128, v2: v128, v3: v128): void {
  addHalf(acc64, v0);
  addHalf(acc64 + 32, v1);
  addHalf(acc64 + 64, v2);
  addHalf(acc64 + 96, v3);
}
@inline function addHalf(p: usize, v: v128): void {
  v128.store(p, f64x2.add(v128.load(p), f64x2.promote_low_f32x4(v)));
  v128.store(p, f64x2.add(v128.load(p, 16), f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1))), 16);
}
/** Lanes 0, 1 of an f32x4 as f64x2. */
@inline function lo64(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}
/** Lanes 2, 3 of an f32x4 as f64x2. */
@inline function hi64(v: v128): v128 {
  return f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
}
/** Adds eight f64x2 (16 channels) into the 16 f64 at p. */
@inline function store8(p: usize, e0: v128, e1: v128, e2: v128, e3: v128, e4: v128, e5: v128, e6: v128, e7: v128): void {
  v128.store(p, f64x2.add(v128.load(p), e0));
  v128.store(p, f64x2.add(v128.load(p, 16), e1), 16);
  v128.store(p, f64x2.add(v128.load(p, 32), e2), 32);
  v128.store(p, f64x2.add(v128.load(p, 48), e3), 48);
  v128.store(p, f64x2.add(v128.load(p, 64), e4), 64);
  v128.store(p, f64x2.add(v128.load(p, 80), e5), 80);
  v128.store(p, f64x2.add(v128.load(p, 96), e6), 96);
  v128.store(p, f64x2.add(v128.load(p, 112), e7), 112);
}

/** Zeroes `count` f64 at p. */
export function zeroF64(p: usize, count: i32): void {
  memory.fill(p, 0, <usize>count * 8);
}

/**
 * out[c] (16 f64) += Σ z[i][y][x][c] over images [i0, i1) when `mean` is 0; otherwise Σ (z − mean[c])².
 * z is unpadded S×S.
 */
export function channelSums(z: usize, img: usize, S: i32, i0: i32, i1: i32, mean: usize, out: usize): void {
  const row = <usize>S * PIX;
  const squares = mean != 0;
  const zero = f32x4.splat(0);
  const m0 = squares ? v128.load(mean) : zero, m1 = squares ? v128.load(mean, 16) : zero;
  const m2 = squares ? v128.load(mean, 32) : zero, m3 = squares ? v128.load(mean, 48) : zero;
  for (let i = i0; i < i1; i++) {
    for (let y = 0; y < S; y++) {
      let p = z + <usize>i * img + <usize>y * row;
      const end = p + row;
      let s0 = zero, s1 = zero, s2 = zero, s3 = zero;
      if (squares) {
        while (p < end) {
          const d0 = f32x4.sub(v128.load(p), m0), d1 = f32x4.sub(v128.load(p, 16), m1);
          const d2 = f32x4.sub(v128.load(p, 32), m2), d3 = f32x4.sub(v128.load(p, 48), m3);
          s0 = f32x4.add(s0, f32x4.mul(d0, d0));
          s1 = f32x4.add(s1, f32x4.mul(d1, d1));
          s2 = f32x4.add(s2, f32x4.mul(d2, d2));
          s3 = f32x4.add(s3, f32x4.mul(d3, d3));
          p += PIX;
        }
        widenAdd(out, s0, s1, s2, s3);
      } else {
        let e0 = f64x2.splat(0), e1 = e0, e2 = e0, e3 = e0, e4 = e0, e5 = e0, e6 = e0, e7 = e0;
        while (p < end) {
          const v0 = v128.load(p), v1 = v128.load(p, 16), v2 = v128.load(p, 32), v3 = v128.load(p, 48);
          e0 = f64x2.add(e0, lo64(v0)); e1 = f64x2.add(e1, hi64(v0));
          e2 = f64x2.add(e2, lo64(v1)); e3 = f64x2.add(e3, hi64(v1));
          e4 = f64x2.add(e4, lo64(v2)); e5 = f64x2.add(e5, hi64(v2));
          e6 = f64x2.add(e6, lo64(v3)); e7 = f64x2.add(e7, hi64(v3));
          p += PIX;
        }
        store8(out, e0, e1, e2, e3, e4, e5, e6, e7);
      }
    }
  }
}

/**
 * a[i][y+1][x+1][c] = max(0, z[i][y][x][c]·alpha[c] + shift[c]) — normalisation and affine folded into one
 * multiply-add per element (as PyTorch's CPU kernel does), then ReLU; `a` is padded (its border stays 0).
 */
export function bnReluForward(z: usize, zImg: usize, S: i32, alpha: usize, shift: usize, a: usize, aImg: usize, i0: i32, i1: i32): void {
  const P = S + 2;
  const al0 = v128.load(alpha), al1 = v128.load(alpha, 16), al2 = v128.load(alpha, 32), al3 = v128.load(alpha, 48);
  const sh0 = v128.load(shift), sh1 = v128.load(shift, 16), sh2 = v128.load(shift, 32), sh3 = v128.load(shift, 48);
  const zero = f32x4.splat(0);
  for (let i = i0; i < i1; i++) {
    for (let y = 0; y < S; y++) {
      let p = z + <usize>i * zImg + <usize>(y * S) * PIX;
      let q = a + <usize>i * aImg + <usize>((y + 1) * P + 1) * PIX;
      const end = p + <usize>S * PIX;
      while (p < end) {
        v128.store(q, f32x4.max(f32x4.add(f32x4.mul(v128.load(p), al0), sh0), zero));
        v128.store(q, f32x4.max(f32x4.add(f32x4.mul(v128.load(p, 16), al1), sh1), zero), 16);
        v128.store(q, f32x4.max(f32x4.add(f32x4.mul(v128.load(p, 32), al2), sh2), zero), 32);
        v128.store(q, f32x4.max(f32x4.add(f32x4.mul(v128.load(p, 48), al3), sh3), zero), 48);
        p += PIX;
        q += PIX;
      }
    }
  }
}

/**
 * Backward sums for BN + ReLU: with g = da where the ReLU output a > 0 (else 0),
 * out[0..16) += Σ g and out[16..32) += Σ g·(z − mean). da and z unpadded, a padded.
 */
export function bnReluBackwardSums(
  da: usize, daImg: usize, a: usize, aImg: usize, z: usize, zImg: usize, S: i32, mean: usize, i0: i32, i1: i32, out: usize,
): void {
  const P = S + 2;
  const m0 = v128.load(mean), m1 = v128.load(mean, 16), m2 = v128.load(mean, 32), m3 = v128.load(mean, 48);
  const zero = f32x4.splat(0);
  for (let i = i0; i < i1; i++) {
    for (let y = 0; y < S; y++) {
      const row = <usize>(y * S) * PIX;
      let pd = da + <usize>i * daImg + row, pz = z + <usize>i * zImg + row;
      let pa = a + <usize>i * aImg + <usize>((y + 1) * P + 1) * PIX;
      const end = pd + <usize>S * PIX;
      let e0 = f64x2.splat(0), e1 = e0, e2 = e0, e3 = e0, e4 = e0, e5 = e0, e6 = e0, e7 = e0;
      let t0 = zero, t1 = zero, t2 = zero, t3 = zero;
      while (pd < end) {
        const g0 = v128.and(v128.load(pd), f32x4.gt(v128.load(pa), zero));
        const g1 = v128.and(v128.load(pd, 16), f32x4.gt(v128.load(pa, 16), zero));
        const g2 = v128.and(v128.load(pd, 32), f32x4.gt(v128.load(pa, 32), zero));
        const g3 = v128.and(v128.load(pd, 48), f32x4.gt(v128.load(pa, 48), zero));
        e0 = f64x2.add(e0, lo64(g0)); e1 = f64x2.add(e1, hi64(g0));
        e2 = f64x2.add(e2, lo64(g1)); e3 = f64x2.add(e3, hi64(g1));
        e4 = f64x2.add(e4, lo64(g2)); e5 = f64x2.add(e5, hi64(g2));
        e6 = f64x2.add(e6, lo64(g3)); e7 = f64x2.add(e7, hi64(g3));
        t0 = f32x4.add(t0, f32x4.mul(g0, f32x4.sub(v128.load(pz), m0)));
        t1 = f32x4.add(t1, f32x4.mul(g1, f32x4.sub(v128.load(pz, 16), m1)));
        t2 = f32x4.add(t2, f32x4.mul(g2, f32x4.sub(v128.load(pz, 32), m2)));
        t3 = f32x4.add(t3, f32x4.mul(g3, f32x4.sub(v128.load(pz, 48), m3)));
        pd += PIX;
        pz += PIX;
        pa += PIX;
      }
      store8(out, e0, e1, e2, e3, e4, e5, e6, e7);
      widenAdd(out + 128, t0, t1, t2, t3);
    }
  }
}

/**
 * dz = (g − gmean[c] − (z − mean[c])·k[c]) · scale[c], written padded (zero border) so the gradient to the input
 * can convolve it directly. dz sums to ~0 over the batch; the means are subtracted in f32 as pairs (value, then
 * the rounding residual "lo") so a mean rounded to f32 does not leave a bias in every element.
 */
export function bnReluBackward(
  da: usize, daImg: usize, a: usize, aImg: usize, z: usize, zImg: usize, S: i32, mean: usize, meanLo: usize,
  gmean: usize, gmeanLo: usize, k: usize, scale: usize, dz: usize, dzImg: usize, i0: i32, i1: i32,
): void {
  const P = S + 2;
  const m0 = v128.load(mean), m1 = v128.load(mean, 16), m2 = v128.load(mean, 32), m3 = v128.load(mean, 48);
  const ml0 = v128.load(meanLo), ml1 = v128.load(meanLo, 16), ml2 = v128.load(meanLo, 32), ml3 = v128.load(meanLo, 48);
  const gm0 = v128.load(gmean), gm1 = v128.load(gmean, 16), gm2 = v128.load(gmean, 32), gm3 = v128.load(gmean, 48);
  const gl0 = v128.load(gmeanLo), gl1 = v128.load(gmeanLo, 16), gl2 = v128.load(gmeanLo, 32), gl3 = v128.load(gmeanLo, 48);
  const k0 = v128.load(k), k1 = v128.load(k, 16), k2 = v128.load(k, 32), k3 = v128.load(k, 48);
  const c0 = v128.load(scale), c1 = v128.load(scale, 16), c2 = v128.load(scale, 32), c3 = v128.load(scale, 48);
  const zero = f32x4.splat(0);
  for (let i = i0; i < i1; i++) {
    const dzi = dz + <usize>i * dzImg;
    // zero border rows and columns: the buffer is shared by layers of different sizes
    memory.fill(dzi, 0, <usize>P * PIX);
    memory.fill(dzi + <usize>((P - 1) * P) * PIX, 0, <usize>P * PIX);
    for (let y = 0; y < S; y++) {
      const row = <usize>(y * S) * PIX;
      let pd = da + <usize>i * daImg + row, pz = z + <usize>i * zImg + row;
      let pa = a + <usize>i * aImg + <usize>((y + 1) * P + 1) * PIX;
      let q = dzi + <usize>((y + 1) * P + 1) * PIX;
      v128.store(q - PIX, zero); v128.store(q - PIX, zero, 16); v128.store(q - PIX, zero, 32); v128.store(q - PIX, zero, 48);
      const end = pd + <usize>S * PIX;
      while (pd < end) {
        const g0 = v128.and(v128.load(pd), f32x4.gt(v128.load(pa), zero));
        const g1 = v128.and(v128.load(pd, 16), f32x4.gt(v128.load(pa, 16), zero));
        const g2 = v128.and(v128.load(pd, 32), f32x4.gt(v128.load(pa, 32), zero));
        const g3 = v128.and(v128.load(pd, 48), f32x4.gt(v128.load(pa, 48), zero));
        const x0 = f32x4.sub(f32x4.sub(v128.load(pz), m0), ml0), x1 = f32x4.sub(f32x4.sub(v128.load(pz, 16), m1), ml1);
        const x2 = f32x4.sub(f32x4.sub(v128.load(pz, 32), m2), ml2), x3 = f32x4.sub(f32x4.sub(v128.load(pz, 48), m3), ml3);
        const r0 = f32x4.mul(f32x4.sub(f32x4.sub(f32x4.sub(g0, gm0), gl0), f32x4.mul(x0, k0)), c0);
        const r1 = f32x4.mul(f32x4.sub(f32x4.sub(f32x4.sub(g1, gm1), gl1), f32x4.mul(x1, k1)), c1);
        const r2 = f32x4.mul(f32x4.sub(f32x4.sub(f32x4.sub(g2, gm2), gl2), f32x4.mul(x2, k2)), c2);
        const r3 = f32x4.mul(f32x4.sub(f32x4.sub(f32x4.sub(g3, gm3), gl3), f32x4.mul(x3, k3)), c3);
        v128.store(q, r0); v128.store(q, r1, 16); v128.store(q, r2, 32); v128.store(q, r3, 48);
        pd += PIX;
        pz += PIX;
        pa += PIX;
        q += PIX;
      }
      v128.store(q, zero); v128.store(q, zero, 16); v128.store(q, zero, 32); v128.store(q, zero, 48);
    }
  }
}

