// Direct 3×3 convolutions (stride 1, padding 1) specialised for this network: 16 channels are exactly four f32x4
// vectors, so every pixel's channels fill whole 128-bit registers and no lane is wasted.
//
// Layouts (see memory-map.ts): inputs are padded NHWC ((S+2)×(S+2) pixels of 16 floats, zero border), outputs are
// unpadded NHWC (S×S pixels). Images sit `stride` bytes apart: buffers shared by layers of different sizes (the
// gradients of the backward pass) keep the largest layer's stride, so threads' slices never overlap. Weights are packed so the 16 output channels of one (tap, input channel) are one
// contiguous 64-byte row: forward [tap][ci][co], backward-to-input [tap][co][ci] with flipped taps (packWeights).
//
// Two output pixels are computed at once (8 accumulator vectors): each weight row loaded from memory then feeds two
// pixels, and 8 independent add chains hide the latency of f32x4.add. Wasm SIMD has no fused multiply-add, so a
// multiply-accumulate is one f32x4.mul and one f32x4.add.
import { C, PIX } from "./memory-map";

/**
 * out[i][y][x][·] = bias[·] + Σ_{ky,kx,ci} inp[i][y+ky][x+kx][ci] · w[ky·3+kx][ci][·] for images [i0, i1).
 * Serves the forward pass (w = forward packing, bias = conv bias) and the gradient to the input (w = backward
 * packing, bias = zeros, inp = the padded output gradient).
 */
export function conv3x3x16(inp: usize, inImg: usize, S: i32, w: usize, bias: usize, out: usize, outImg: usize, i0: i32, i1: i32): void {
  const P = S + 2, pixels = S * S;
  const b0 = v128.load(bias), b1 = v128.load(bias, 16), b2 = v128.load(bias, 32), b3 = v128.load(bias, 48);
  for (let i = i0; i < i1; i++) {
    const ib = inp + <usize>i * inImg;
    const o = out + <usize>i * outImg;
    // pixels in row-major order, two at a time; with an odd width a pair may span two rows
    let p = 0, y0 = 0, x0 = 0;
    for (; p + 2 <= pixels; p += 2) {
      const wraps = x0 + 1 == S; // the pair's second pixel starts the next row
      const in0 = ib + <usize>(y0 * P + x0) * PIX;
      const in1 = wraps ? ib + <usize>((y0 + 1) * P) * PIX : in0 + PIX;
      x0 += 2;
      if (x0 >= S) {
        x0 -= S;
        y0++;
      }
      // accumulators: a* for the first pixel, c* for the second; four vectors = 16 output channels each
      let a0 = b0, a1 = b1, a2 = b2, a3 = b3, c0 = b0, c1 = b1, c2 = b2, c3 = b3;
      for (let ky: usize = 0; ky < 3; ky++) {
        for (let kx: usize = 0; kx < 3; kx++) {
          const off = (ky * <usize>P + kx) * PIX;
          const px0 = in0 + off, px1 = in1 + off;
          const wt = w + (ky * 3 + kx) * (<usize>C * PIX);
          for (let ci: usize = 0; ci < 64; ci += 4) {
            const s0 = v128.load32_splat(px0 + ci);
            const s1 = v128.load32_splat(px1 + ci);
            const wp = wt + (ci << 4);
            const w0 = v128.load(wp), w1 = v128.load(wp, 16), w2 = v128.load(wp, 32), w3 = v128.load(wp, 48);
            a0 = f32x4.add(a0, f32x4.mul(s0, w0));
            a1 = f32x4.add(a1, f32x4.mul(s0, w1));
            a2 = f32x4.add(a2, f32x4.mul(s0, w2));
            a3 = f32x4.add(a3, f32x4.mul(s0, w3));
            c0 = f32x4.add(c0, f32x4.mul(s1, w0));
            c1 = f32x4.add(c1, f32x4.mul(s1, w1));
            c2 = f32x4.add(c2, f32x4.mul(s1, w2));
            c3 = f32x4.add(c3, f32x4.mul(s1, w3));
          }
        }
      }
      const q = o + <usize>p * PIX;
      v128.store(q, a0); v128.store(q, a1, 16); v128.store(q, a2, 32); v128.store(q, a3, 48);
      v128.store(q, c0, 64); v128.store(q, c1, 80); v128.store(q, c2, 96); v128.store(q, c3, 112);
    }
    if (p < pixels) {
      // an odd pixel count (7×7 layers): the last pixel alone
      const in0 = ib + <usize>(y0 * P + x0) * PIX;
      let a0 = b0, a1 = b1, a2 = b2, a3 = b3;
      for (let ky: usize = 0; ky < 3; ky++) {
        for (let kx: usize = 0; kx < 3; kx++) {
          const px = in0 + (ky * <usize>P + kx) * PIX;
          const wt = w + (ky * 3 + kx) * (<usize>C * PIX);
          for (let ci: usize = 0; ci < 64; ci += 4) {
            const s0 = v128.load32_splat(px + ci);
            const wp = wt + (ci << 4);
            a0 = f32x4.add(a0, f32x4.mul(s0, v128.load(wp)));
            a1 = f32x4.add(a1, f32x4.mul(s0, v128.load(wp, 16)));
            a2 = f32x4.add(a2, f32x4.mul(s0, v128.load(wp, 32)));
            a3 = f32x4.add(a3, f32x4.mul(s0, v128.load(wp, 48)));
          }
        }
      }
      const q = o + <usize>p * PIX;
      v128.store(q, a0); v128.store(q, a1, 16); v128.store(q, a2, 32); v128.store(q, a3, 48);
    }
  }
}

/**
 * Gradient to the filter, accumulated: g[tap][ci][co] += Σ_{i,y,x} dz[i][y][x][co] · inp[i][y+ky][x+kx][ci]
 * (dz padded like inp: the backward pass keeps the output gradient padded for the gradient to the input).
 * A GEMM with the pixels as the reduction axis: for each (tap, pair of input channels) the 2 × 16 sums stay in
 * 8 registers while a band of rows (small enough for L1) is swept, then are added to `g` (this thread's partial).
 */
export function conv3x3x16Filter(inp: usize, inImg: usize, S: i32, dz: usize, dzImg: usize, g: usize, i0: i32, i1: i32): void {
  const P = S + 2;
  const band = S == 28 ? 4 : S; // rows per sweep: dz band + input band stay within a 32 KiB L1
  for (let i = i0; i < i1; i++) {
    const ib = inp + <usize>i * inImg, db = dz + <usize>i * dzImg + <usize>(P + 1) * PIX;
    for (let r0 = 0; r0 < S; r0 += band) {
      const r1 = min(r0 + band, S);
      for (let ky = 0; ky < 3; ky++) {
        for (let kx = 0; kx < 3; kx++) {
          const gt = g + <usize>(ky * 3 + kx) * (<usize>C * PIX);
          for (let ci: usize = 0; ci < 64; ci += 8) {
            let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
            // the band's pixels in one loop: at the end of a row both pointers skip the two border pixels
            let d = db + <usize>(r0 * P) * PIX;
            let px = ib + <usize>((r0 + ky) * P + kx) * PIX + ci;
            const dEnd = db + <usize>(r1 * P) * PIX;
            let x = 0;
            while (d < dEnd) {
              const d0 = v128.load(d), d1 = v128.load(d, 16), d2 = v128.load(d, 32), d3 = v128.load(d, 48);
              const s0 = v128.load32_splat(px), s1 = v128.load32_splat(px, 4);
              a0 = f32x4.add(a0, f32x4.mul(s0, d0));
              a1 = f32x4.add(a1, f32x4.mul(s0, d1));
              a2 = f32x4.add(a2, f32x4.mul(s0, d2));
              a3 = f32x4.add(a3, f32x4.mul(s0, d3));
              c0 = f32x4.add(c0, f32x4.mul(s1, d0));
              c1 = f32x4.add(c1, f32x4.mul(s1, d1));
              c2 = f32x4.add(c2, f32x4.mul(s1, d2));
              c3 = f32x4.add(c3, f32x4.mul(s1, d3));
              d += PIX;
              px += PIX;
              if (++x == S) {
                x = 0;
                d += 2 * PIX;
                px += 2 * PIX;
              }
            }
            const ga = gt + (ci << 4); // row of input channel ci: 16 floats
            v128.store(ga, f32x4.add(v128.load(ga), a0));
            v128.store(ga, f32x4.add(v128.load(ga, 16), a1), 16);
            v128.store(ga, f32x4.add(v128.load(ga, 32), a2), 32);
            v128.store(ga, f32x4.add(v128.load(ga, 48), a3), 48);
            v128.store(ga, f32x4.add(v128.load(ga, 64), c0), 64);
            v128.store(ga, f32x4.add(v128.load(ga, 80), c1), 80);
            v128.store(ga, f32x4.add(v128.load(ga, 96), c2), 96);
            v128.store(ga, f32x4.add(v128.load(ga, 112), c3), 112);
          }
        }
      }
    }
  }
}

/**
 * The first layer (one input channel): out[i][y][x][·] = bias + Σ_tap x0[i][y+ky][x+kx] · w[tap][·], where x0 is
 * the padded 30×30 input image and w is [tap][co] (9 rows of 16).
 */
export function conv3x3x1(x0: usize, w: usize, bias: usize, out: usize, outImg: usize, i0: i32, i1: i32): void {
  const S = 28, P = 30;
  const b0 = v128.load(bias), b1 = v128.load(bias, 16), b2 = v128.load(bias, 32), b3 = v128.load(bias, 48);
  for (let i = i0; i < i1; i++) {
    const ib = x0 + <usize>(i * P * P) * 4;
    let o = out + <usize>i * outImg;
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x += 2) {
        let a0 = b0, a1 = b1, a2 = b2, a3 = b3, c0 = b0, c1 = b1, c2 = b2, c3 = b3;
        for (let ky = 0; ky < 3; ky++) {
          for (let kx = 0; kx < 3; kx++) {
            const px = ib + <usize>((y + ky) * P + x + kx) * 4;
            const s0 = v128.load32_splat(px), s1 = v128.load32_splat(px, 4);
            const wp = w + <usize>(ky * 3 + kx) * PIX;
            const w0 = v128.load(wp), w1 = v128.load(wp, 16), w2 = v128.load(wp, 32), w3 = v128.load(wp, 48);
            a0 = f32x4.add(a0, f32x4.mul(s0, w0));
            a1 = f32x4.add(a1, f32x4.mul(s0, w1));
            a2 = f32x4.add(a2, f32x4.mul(s0, w2));
            a3 = f32x4.add(a3, f32x4.mul(s0, w3));
            c0 = f32x4.add(c0, f32x4.mul(s1, w0));
            c1 = f32x4.add(c1, f32x4.mul(s1, w1));
            c2 = f32x4.add(c2, f32x4.mul(s1, w2));
            c3 = f32x4.add(c3, f32x4.mul(s1, w3));
          }
        }
        v128.store(o, a0); v128.store(o, a1, 16); v128.store(o, a2, 32); v128.store(o, a3, 48);
        v128.store(o, c0, 64); v128.store(o, c1, 80); v128.store(o, c2, 96); v128.store(o, c3, 112);
        o += 2 * PIX;
      }
    }
  }
}

/** Gradient to the first layer's filter, accumulated: g[tap][co] += Σ dz[i][y][x][co] · x0[i][y+ky][x+kx] (dz padded 30×30). Two taps per sweep. */
export function conv3x3x1Filter(x0: usize, dz: usize, dzImg: usize, g: usize, i0: i32, i1: i32): void {
  const S = 28, P = 30;
  for (let i = i0; i < i1; i++) {
    const ib = x0 + <usize>(i * P * P) * 4, db = dz + <usize>i * dzImg + <usize>(P + 1) * PIX;
    for (let t = 0; t < 9; t += 2) {
      const t1 = t + 1 < 9 ? t + 1 : t; // the last sweep computes tap 8 twice and keeps one
      const off0 = <usize>((t / 3) * P + t % 3) * 4, off1 = <usize>((t1 / 3) * P + t1 % 3) * 4;
      let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0, c0 = a0, c1 = a0, c2 = a0, c3 = a0;
      for (let y = 0; y < S; y++) {
        let d = db + <usize>(y * P) * PIX;
        let px = ib + <usize>(y * P) * 4;
        for (let x = 0; x < S; x++) {
          const d0 = v128.load(d), d1 = v128.load(d, 16), d2 = v128.load(d, 32), d3 = v128.load(d, 48);
          const s0 = v128.load32_splat(px + off0), s1 = v128.load32_splat(px + off1);
          a0 = f32x4.add(a0, f32x4.mul(s0, d0));
          a1 = f32x4.add(a1, f32x4.mul(s0, d1));
          a2 = f32x4.add(a2, f32x4.mul(s0, d2));
          a3 = f32x4.add(a3, f32x4.mul(s0, d3));
          c0 = f32x4.add(c0, f32x4.mul(s1, d0));
          c1 = f32x4.add(c1, f32x4.mul(s1, d1));
          c2 = f32x4.add(c2, f32x4.mul(s1, d2));
          c3 = f32x4.add(c3, f32x4.mul(s1, d3));
          d += PIX;
          px += 4;
        }
      }
      const ga = g + <usize>t * PIX;
      v128.store(ga, f32x4.add(v128.load(ga), a0));
      v128.store(ga, f32x4.add(v128.load(ga, 16), a1), 16);
      v128.store(ga, f32x4.add(v128.load(ga, 32), a2), 32);
      v128.store(ga, f32x4.add(v128.load(ga, 48), a3), 48);
      if (t1 != t) {
        const gb = g + <usize>t1 * PIX;
        v128.store(gb, f32x4.add(v128.load(gb), c0));
        v128.store(gb, f32x4.add(v128.load(gb, 16), c1), 16);
        v128.store(gb, f32x4.add(v128.load(gb, 32), c2), 32);
        v128.store(gb, f32x4.add(v128.load(gb, 48), c3), 48);
      }
    }
  }
}

/**
 * Packs layer weights from PyTorch's [co][ci][ky][kx] into the kernels' layouts:
 * forward fwd[tap][ci][co]; backward-to-input bwd[tap'][co][ci] = W[co][ci][8 − tap'] (the 180° flip turns the
 * gradient to the input into a forward convolution of the padded output gradient). cin = 1 packs fwd only.
 */
export function packWeights(W: usize, cin: i32, fwd: usize, bwd: usize): void {
  for (let co = 0; co < C; co++) {
    for (let ci = 0; ci < cin; ci++) {
      for (let t = 0; t < 9; t++) {
        const v = load<f32>(W + <usize>((co * cin + ci) * 9 + t) * 4);
        store<f32>(fwd + <usize>((t * cin + ci) * C + co) * 4, v);
        if (cin == C) store<f32>(bwd + <usize>(((8 - t) * C + co) * C + ci) * 4, v);
      }
    }
  }
}
