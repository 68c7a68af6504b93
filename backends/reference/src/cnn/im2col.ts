import type { Arr } from "./arrays.ts";

/**
 * Patch extraction for 3×3, stride 1, padding 1 convolutions on one image of `C` channels, H×W.
 * Column index k = c·9 + ky·3 + kx matches PyTorch's weight layout [out, in, 3, 3] flattened per output channel.
 */

/** Pixel-major patches: dst[p·K + k], K = 9C, p = y·W + x (operand B of gemmNT for the forward conv). */
export function im2colT(src: Arr, off: number, C: number, H: number, W: number, dst: Arr): void {
  const K = 9 * C,
    HW = H * W;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      let d = (y * W + x) * K;
      for (let c = 0; c < C; c++) {
        const base = off + c * HW;
        for (let ky = -1; ky <= 1; ky++) {
          const yy = y + ky;
          if (yy < 0 || yy >= H) {
            dst[d] = 0;
            dst[d + 1] = 0;
            dst[d + 2] = 0;
            d += 3;
            continue;
          }
          const r = base + yy * W + x;
          dst[d] = x > 0 ? src[r - 1]! : 0;
          dst[d + 1] = src[r]!;
          dst[d + 2] = x + 1 < W ? src[r + 1]! : 0;
          d += 3;
        }
      }
    }
  }
}

/** Tap-major patches: dst[k·P + p] (operand B of gemmNT for the filter gradient, reducing over pixels). */
export function im2col(src: Arr, off: number, C: number, H: number, W: number, dst: Arr): void {
  const HW = H * W;
  let d = 0;
  for (let c = 0; c < C; c++) {
    const base = off + c * HW;
    for (let ky = -1; ky <= 1; ky++) {
      for (let kx = -1; kx <= 1; kx++) {
        for (let y = 0; y < H; y++) {
          const yy = y + ky;
          if (yy < 0 || yy >= H) {
            for (let x = 0; x < W; x++) dst[d++] = 0;
            continue;
          }
          const r = base + yy * W + kx;
          const x0 = kx < 0 ? 1 : 0,
            x1 = kx > 0 ? W - 1 : W;
          if (x0 === 1) dst[d++] = 0;
          for (let x = x0; x < x1; x++) dst[d++] = src[r + x]!;
          if (x1 < W) dst[d++] = 0;
        }
      }
    }
  }
}
