// Winograd F(2×2, 3×3) for the 16-channel 3×3 convolutions of even size (28×28 and 14×14): each 2×2 block of
// outputs ("tile") comes from its 4×4 input patch d as  Y = Aᵀ [ Σ_ci (Bᵀ d_ci B) ⊙ U_ci ] A  with U = G g Gᵀ the
// transformed 3×3 filter. The multiplications happen in the 16 elementwise products: 16·16·16 multiply-adds per
// tile of 4 outputs instead of 4·9·16·16 — 2.25× fewer — at the price of the two cheap transforms (adds only).
//
//   Bᵀ = | 1  0 −1  0 |    G = |  1    0    0  |    Aᵀ = | 1  1  1  0 |
//        | 0  1  1  0 |        | 1/2  1/2  1/2 |         | 0  1 −1 −1 |
//        | 0 −1  1  0 |        | 1/2 −1/2  1/2 |
//        | 0  1  0 −1 |        |  0    0    1  |
//
// Layouts as in conv.ts (padded NHWC in, unpadded NHWC out, image strides given). The tiles of the thread's images,
// numbered image by image, are processed in chunks (which may span two images): transform a chunk's inputs into V[ξ][tile][ci] (ξ = one of the 16 positions), multiply by
// U[ξ][ci][co] like the direct kernel multiplies by weights (two tiles × 16 output channels in 8 registers), then
// transform back. V and M live in this thread's scratch (`work`, WINO_WORK_BYTES).
import { C, PIX, WINO_CHUNK as CHUNK, WINO_XI_STRIDE as XI_STRIDE } from "./memory-map";
// A chunk's V and M (16 positions × 64 tiles × 64 bytes each) stay in L2; each product streams one position's
// 4 KiB of V and M through L1. Positions sit 4 KiB + 64 bytes apart so the 16 streams of a transform do not all
// map to the same L1 set.

/**
 * U[ξ][ci][co] = (G g Gᵀ)[ξ] for the 3×3 filter g[ky][kx] = packed[(ky·3 + kx)][ci][co] (the kernels' packed layout:
 * forward [tap][ci][co], or backward-to-input [tap][co][ci], read the same way).
 */
export function winogradFilter(packed: usize, U: usize): void {
  for (let ci = 0; ci < C; ci++) {
    for (let co = 0; co < C; co++) {
      const base = packed + <usize>(ci * C + co) * 4;
      // g[r][c], r = ky, c = kx (tap stride 16·16 floats)
      const g00 = <f64>load<f32>(base), g01 = <f64>load<f32>(base + 1024), g02 = <f64>load<f32>(base + 2048);
      const g10 = <f64>load<f32>(base + 3072), g11 = <f64>load<f32>(base + 4096), g12 = <f64>load<f32>(base + 5120);
      const g20 = <f64>load<f32>(base + 6144), g21 = <f64>load<f32>(base + 7168), g22 = <f64>load<f32>(base + 8192);
      // t = G g (4×3), rows of G applied to the columns of g
      const t00 = g00, t01 = g01, t02 = g02;
      const t10 = 0.5 * (g00 + g10 + g20), t11 = 0.5 * (g01 + g11 + g21), t12 = 0.5 * (g02 + g12 + g22);
      const t20 = 0.5 * (g00 - g10 + g20), t21 = 0.5 * (g01 - g11 + g21), t22 = 0.5 * (g02 - g12 + g22);
      const t30 = g20, t31 = g21, t32 = g22;
      // u = t Gᵀ (4×4)
      const out = U + <usize>(ci * C + co) * 4;
      storeRow(out, 0, t00, t01, t02);
      storeRow(out, 4, t10, t11, t12);
      storeRow(out, 8, t20, t21, t22);
      storeRow(out, 12, t30, t31, t32);
    }
  }
}
/** u[r][0..3] = (a, (a+b+c)/2, (a−b+c)/2, c) into U[ξ = r·4 + j] (ξ stride 16·16 floats). */
@inline function storeRow(out: usize, xi: usize, a: f64, b: f64, c: f64): void {
  store<f32>(out + xi * 1024, <f32>a);
  store<f32>(out + (xi + 1) * 1024, <f32>(0.5 * (a + b + c)));
  store<f32>(out + (xi + 2) * 1024, <f32>(0.5 * (a - b + c)));
  store<f32>(out + (xi + 3) * 1024, <f32>c);
}

/** Same contract as conv3x3x16 (conv.ts) for even S, with U from winogradFilter. */
export function winograd3x3x16(
  inp: usize, inImg: usize, S: i32, U: usize, bias: usize, out: usize, outImg: usize, work: usize, i0: i32, i1: i32,
): void {
  const P = S + 2, T = S >> 1, tiles = T * T;
  const V = work, M = work + 16 * XI_STRIDE;
  const first = i0 * tiles, last = i1 * tiles;
  for (let t0 = first; t0 < last; t0 += CHUNK) {
    const n = min(CHUNK, last - t0);
    // 1. input transform: V[ξ][t][·] = (Bᵀ d B)[ξ] for each tile's 4×4 patch
    for (let t = 0; t < n; t++) {
      const i = (t0 + t) / tiles, ty = ((t0 + t) % tiles) / T, tx = (t0 + t) % T;
      const patch = inp + <usize>i * inImg + <usize>((2 * ty) * P + 2 * tx) * PIX;
      for (let g: usize = 0; g < PIX; g += 16) inputTile(patch + g, <usize>P * PIX, V + <usize>t * PIX + g);
    }
    // 2. the 16 products: M[ξ][t][co] = Σ_ci V[ξ][t][ci] · U[ξ][ci][co]
    for (let xi: usize = 0; xi < 16; xi++) multiply(V + xi * XI_STRIDE, U + xi * 1024, M + xi * XI_STRIDE, n);
    // 3. output transform: the 2×2 outputs of each tile, plus the bias
    for (let t = 0; t < n; t++) {
      const i = (t0 + t) / tiles, ty = ((t0 + t) % tiles) / T, tx = (t0 + t) % T;
      const o = out + <usize>i * outImg + <usize>((2 * ty) * S + 2 * tx) * PIX;
      for (let g: usize = 0; g < PIX; g += 16) outputTile(M + <usize>t * PIX + g, v128.load(bias + g), o + g, <usize>S * PIX);
    }
  }
}

/** V[ξ] = (Bᵀ d B)[ξ] for one 4-channel group; d[r][c] at patch + r·rowBytes + c·PIX, V[ξ] at v + ξ·XI_STRIDE. */
@inline function inputTile(patch: usize, rowBytes: usize, v: usize): void {
  // Row r of Bᵀ d combines two rows of d: (d0 − d2, d1 + d2, d2 − d1, d1 − d3); each is then combined across its
  // columns the same way (· B). Rows 1 and 2 share their inputs, so they are made together; 12 registers live.
  const p0 = patch, p1 = patch + rowBytes, p2 = patch + 2 * rowBytes, p3 = patch + 3 * rowBytes;
  const d10 = v128.load(p1), d11 = v128.load(p1, PIX), d12 = v128.load(p1, 2 * PIX), d13 = v128.load(p1, 3 * PIX);
  const d20 = v128.load(p2), d21 = v128.load(p2, PIX), d22 = v128.load(p2, 2 * PIX), d23 = v128.load(p2, 3 * PIX);
  inputRow(v + 4 * XI_STRIDE, f32x4.add(d10, d20), f32x4.add(d11, d21), f32x4.add(d12, d22), f32x4.add(d13, d23));
  inputRow(v + 8 * XI_STRIDE, f32x4.sub(d20, d10), f32x4.sub(d21, d11), f32x4.sub(d22, d12), f32x4.sub(d23, d13));
  inputRow(v, f32x4.sub(v128.load(p0), d20), f32x4.sub(v128.load(p0, PIX), d21), f32x4.sub(v128.load(p0, 2 * PIX), d22),
    f32x4.sub(v128.load(p0, 3 * PIX), d23));
  inputRow(v + 12 * XI_STRIDE, f32x4.sub(d10, v128.load(p3)), f32x4.sub(d11, v128.load(p3, PIX)), f32x4.sub(d12, v128.load(p3, 2 * PIX)),
    f32x4.sub(d13, v128.load(p3, 3 * PIX)));
}
/** One row x0..x3 of Bᵀ d, times B: (x0 − x2, x1 + x2, x2 − x1, x1 − x3) at four consecutive positions ξ. */
@inline function inputRow(v: usize, x0: v128, x1: v128, x2: v128, x3: v128): void {
  v128.store(v, f32x4.sub(x0, x2));
  v128.store(v + XI_STRIDE, f32x4.add(x1, x2));
  v128.store(v + 2 * XI_STRIDE, f32x4.sub(x2, x1));
  v128.store(v + 3 * XI_STRIDE, f32x4.sub(x1, x3));
}

/** M[t][·] = Σ_ci V[t][ci] · U[ci][·] for the n tiles of one position ξ (two tiles at a time, as the direct kernel). */
@inline function multiply(V: usize, U: usize, M: usize, n: i32): void {
  let t = 0;
  for (; t + 2 <= n; t += 2) {
    const v = V + <usize>t * PIX;
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
    for (let ci: usize = 0; ci < 64; ci += 4) {
      const s0 = v128.load32_splat(v + ci), s1 = v128.load32_splat(v + ci, PIX);
      const up = U + (ci << 4);
      const u0 = v128.load(up), u1 = v128.load(up, 16), u2 = v128.load(up, 32), u3 = v128.load(up, 48);
      a0 = f32x4.add(a0, f32x4.mul(s0, u0));
      a1 = f32x4.add(a1, f32x4.mul(s0, u1));
      a2 = f32x4.add(a2, f32x4.mul(s0, u2));
      a3 = f32x4.add(a3, f32x4.mul(s0, u3));
      c0 = f32x4.add(c0, f32x4.mul(s1, u0));
      c1 = f32x4.add(c1, f32x4.mul(s1, u1));
      c2 = f32x4.add(c2, f32x4.mul(s1, u2));
      c3 = f32x4.add(c3, f32x4.mul(s1, u3));
    }
    const m = M + <usize>t * PIX;
    v128.store(m, a0); v128.store(m, a1, 16); v128.store(m, a2, 32); v128.store(m, a3, 48);
    v128.store(m, c0, 64); v128.store(m, c1, 80); v128.store(m, c2, 96); v128.store(m, c3, 112);
  }
  if (t < n) {
    const v = V + <usize>t * PIX;
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
    for (let ci: usize = 0; ci < 64; ci += 4) {
      const s0 = v128.load32_splat(v + ci);
      const up = U + (ci << 4);
      a0 = f32x4.add(a0, f32x4.mul(s0, v128.load(up)));
      a1 = f32x4.add(a1, f32x4.mul(s0, v128.load(up, 16)));
      a2 = f32x4.add(a2, f32x4.mul(s0, v128.load(up, 32)));
      a3 = f32x4.add(a3, f32x4.mul(s0, v128.load(up, 48)));
    }
    const m = M + <usize>t * PIX;
    v128.store(m, a0); v128.store(m, a1, 16); v128.store(m, a2, 32); v128.store(m, a3, 48);
  }
}

/** The 2×2 outputs Aᵀ m A (+ bias) of one 4-channel group; m[ξ] at m + ξ·XI_STRIDE, output rows `rowBytes` apart. */
@inline function outputTile(m: usize, bias: v128, o: usize, rowBytes: usize): void {
  // Aᵀ m column by column: top = m0 + m1 + m2, bottom = m1 − m2 − m3 (m_r: row r of the 4×4), 8 registers
  const t0 = top(m), t1 = top(m + XI_STRIDE), t2 = top(m + 2 * XI_STRIDE), t3 = top(m + 3 * XI_STRIDE);
  const b0 = bottom(m), b1 = bottom(m + XI_STRIDE), b2 = bottom(m + 2 * XI_STRIDE), b3 = bottom(m + 3 * XI_STRIDE);
  // … then · A across the columns: y0 = c0 + c1 + c2, y1 = c1 − c2 − c3
  v128.store(o, f32x4.add(f32x4.add(f32x4.add(t0, t1), t2), bias));
  v128.store(o + PIX, f32x4.add(f32x4.sub(f32x4.sub(t1, t2), t3), bias));
  v128.store(o + rowBytes, f32x4.add(f32x4.add(f32x4.add(b0, b1), b2), bias));
  v128.store(o + rowBytes + PIX, f32x4.add(f32x4.sub(f32x4.sub(b1, b2), b3), bias));
}
@inline function top(m: usize): v128 {
  return f32x4.add(f32x4.add(v128.load(m), v128.load(m + 4 * XI_STRIDE)), v128.load(m + 8 * XI_STRIDE));
}
@inline function bottom(m: usize): v128 {
  return f32x4.sub(f32x4.sub(v128.load(m + 4 * XI_STRIDE), v128.load(m + 8 * XI_STRIDE)), v128.load(m + 12 * XI_STRIDE));
}

/**
 * Gradient to the filter through the same transform, accumulated into g[tap][ci][co] (the direct kernel's layout).
 * Backpropagating Y = Aᵀ (U ⊙ V) A gives dU = Σ_tiles (A dY Aᵀ) ⊙ V and, from U = G g Gᵀ, dg = Gᵀ dU G: per tile
 * 16·16·16 multiply-adds instead of 4·9·16·16. dU (16 KiB) is summed over this thread's images in `dU`, then
 * folded back to 3×3. dz is padded (the backward pass keeps it so), like inp.
 */
export function winogradFilterGrad(
  inp: usize, inImg: usize, S: i32, dz: usize, dzImg: usize, g: usize, dU: usize, work: usize, i0: i32, i1: i32,
): void {
  const P = S + 2, T = S >> 1, tiles = T * T;
  const V = work, D = work + 16 * XI_STRIDE;
  memory.fill(dU, 0, 16 * 16 * 16 * 4);
  const first = i0 * tiles, last = i1 * tiles;
  for (let t0 = first; t0 < last; t0 += CHUNK) {
    const n = min(CHUNK, last - t0);
    for (let t = 0; t < n; t++) {
      const i = (t0 + t) / tiles, ty = ((t0 + t) % tiles) / T, tx = (t0 + t) % T;
      const patch = inp + <usize>i * inImg + <usize>((2 * ty) * P + 2 * tx) * PIX;
      const dy = dz + <usize>i * dzImg + <usize>((2 * ty + 1) * P + 2 * tx + 1) * PIX;
      for (let c: usize = 0; c < PIX; c += 16) {
        inputTile(patch + c, <usize>P * PIX, V + <usize>t * PIX + c);
        gradientTile(dy + c, <usize>P * PIX, D + <usize>t * PIX + c);
      }
    }
    for (let xi: usize = 0; xi < 16; xi++) accumulate(V + xi * XI_STRIDE, D + xi * XI_STRIDE, dU + xi * 1024, n);
  }
  // dg[a][b] = Σ_{r,s} G[r][a] dU[r][s] G[s][b], with G's columns (1, ½, ½, 0), (0, ½, −½, 0), (0, ½, ½, 1)
  for (let ci = 0; ci < C; ci++) {
    for (let co = 0; co < C; co++) {
      const u = dU + <usize>(ci * C + co) * 4;
      // rows r of dU folded with G over s: w[r][b]
      let w00: f64 = 0, w01: f64 = 0, w02: f64 = 0, w10: f64 = 0, w11: f64 = 0, w12: f64 = 0;
      let w20: f64 = 0, w21: f64 = 0, w22: f64 = 0, w30: f64 = 0, w31: f64 = 0, w32: f64 = 0;
      for (let r = 0; r < 4; r++) {
        const e0 = <f64>load<f32>(u + <usize>(r * 4) * 1024), e1 = <f64>load<f32>(u + <usize>(r * 4 + 1) * 1024);
        const e2 = <f64>load<f32>(u + <usize>(r * 4 + 2) * 1024), e3 = <f64>load<f32>(u + <usize>(r * 4 + 3) * 1024);
        const b0 = e0 + 0.5 * (e1 + e2), b1 = 0.5 * (e1 - e2), b2 = 0.5 * (e1 + e2) + e3;
        if (r == 0) { w00 = b0; w01 = b1; w02 = b2; } else if (r == 1) { w10 = b0; w11 = b1; w12 = b2; }
        else if (r == 2) { w20 = b0; w21 = b1; w22 = b2; } else { w30 = b0; w31 = b1; w32 = b2; }
      }
      // then over r: dg[0][b] = w0 + ½(w1 + w2), dg[1][b] = ½(w1 − w2), dg[2][b] = ½(w1 + w2) + w3
      const base = g + <usize>(ci * C + co) * 4;
      addTap(base, 0, w00 + 0.5 * (w10 + w20)); addTap(base, 1, w01 + 0.5 * (w11 + w21)); addTap(base, 2, w02 + 0.5 * (w12 + w22));
      addTap(base, 3, 0.5 * (w10 - w20)); addTap(base, 4, 0.5 * (w11 - w21)); addTap(base, 5, 0.5 * (w12 - w22));
      addTap(base, 6, 0.5 * (w10 + w20) + w30); addTap(base, 7, 0.5 * (w11 + w21) + w31); addTap(base, 8, 0.5 * (w12 + w22) + w32);
    }
  }
}
@inline function addTap(base: usize, tap: usize, v: f64): void {
  const p = base + tap * 1024;
  store<f32>(p, <f32>(<f64>load<f32>(p) + v));
}

/** D[ξ] = (A dY Aᵀ)[ξ] for one 4-channel group of a 2×2 output-gradient tile (rows `rowBytes` apart). */
@inline function gradientTile(dy: usize, rowBytes: usize, d: usize): void {
  const y00 = v128.load(dy), y01 = v128.load(dy, PIX), y10 = v128.load(dy + rowBytes), y11 = v128.load(dy + rowBytes, PIX);
  // A dY: rows (y0, y0 + y1, y0 − y1, −y1); then each row r ↦ (r0, r0 + r1, r0 − r1, −r1)
  const zero = f32x4.splat(0);
  gradientRow(d, 0, y00, y01);
  gradientRow(d, 4, f32x4.add(y00, y10), f32x4.add(y01, y11));
  gradientRow(d, 8, f32x4.sub(y00, y10), f32x4.sub(y01, y11));
  gradientRow(d, 12, f32x4.sub(zero, y10), f32x4.sub(zero, y11));
}
@inline function gradientRow(d: usize, xi: usize, r0: v128, r1: v128): void {
  v128.store(d + xi * XI_STRIDE, r0);
  v128.store(d + (xi + 1) * XI_STRIDE, f32x4.add(r0, r1));
  v128.store(d + (xi + 2) * XI_STRIDE, f32x4.sub(r0, r1));
  v128.store(d + (xi + 3) * XI_STRIDE, f32x4.sub(f32x4.splat(0), r1));
}

/** dU[ci][co] += Σ_t V[t][ci] · D[t][co] for one position ξ: two input channels × 16 output channels in 8 registers. */
@inline function accumulate(V: usize, D: usize, dU: usize, n: i32): void {
  for (let ci: usize = 0; ci < 64; ci += 8) {
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
    for (let t: usize = 0; t < <usize>n * PIX; t += PIX) {
      const s0 = v128.load32_splat(V + t + ci), s1 = v128.load32_splat(V + t + ci, 4);
      const d0 = v128.load(D + t), d1 = v128.load(D + t, 16), d2 = v128.load(D + t, 32), d3 = v128.load(D + t, 48);
      a0 = f32x4.add(a0, f32x4.mul(s0, d0));
      a1 = f32x4.add(a1, f32x4.mul(s0, d1));
      a2 = f32x4.add(a2, f32x4.mul(s0, d2));
      a3 = f32x4.add(a3, f32x4.mul(s0, d3));
      c0 = f32x4.add(c0, f32x4.mul(s1, d0));
      c1 = f32x4.add(c1, f32x4.mul(s1, d1));
      c2 = f32x4.add(c2, f32x4.mul(s1, d2));
      c3 = f32x4.add(c3, f32x4.mul(s1, d3));
    }
    const u = dU + (ci << 4); // row of input channel ci: 16 floats
    v128.store(u, f32x4.add(v128.load(u), a0));
    v128.store(u, f32x4.add(v128.load(u, 16), a1), 16);
    v128.store(u, f32x4.add(v128.load(u, 32), a2), 32);
    v128.store(u, f32x4.add(v128.load(u, 48), a3), 48);
    v128.store(u, f32x4.add(v128.load(u, 64), c0), 64);
    v128.store(u, f32x4.add(v128.load(u, 80), c1), 80);
    v128.store(u, f32x4.add(v128.load(u, 96), c2), 96);
    v128.store(u, f32x4.add(v128.load(u, 112), c3), 112);
  }
}
