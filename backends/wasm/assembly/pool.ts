// 2×2 max-pooling with a first-max mask, and dropout with the contract's seeded mask rule.
import { PIX } from "./memory-map";

/**
 * out[i][y+1][x+1][c] = max of the 2×2 window of a (padded S×S) at (2y, 2x); idx[i][y][x][c] = the window position
 * (0..3, row-major) it came from. The window is scanned row-major and only a strictly larger value (or a NaN)
 * moves the choice, so ties go to the FIRST maximum — where PyTorch routes the gradient. `out` is padded too.
 */
export function maxPoolForward(a: usize, aImg: usize, S: i32, out: usize, oImg: usize, idx: usize, iImg: usize, i0: i32, i1: i32): void {
  const P = S + 2, H = S >> 1, Q = H + 2;
  for (let i = i0; i < i1; i++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < H; x++) {
        const w = a + <usize>i * aImg + <usize>((2 * y + 1) * P + 2 * x + 1) * PIX; // window's top-left
        const o = out + <usize>i * oImg + <usize>((y + 1) * Q + x + 1) * PIX;
        const ix = idx + <usize>i * iImg + <usize>(y * H + x) * PIX;
        for (let g: usize = 0; g < PIX; g += 16) {
          let best = v128.load(w + g);
          let pos = i32x4.splat(0);
          const right = v128.load(w + g, PIX);
          let m = v128.or(f32x4.gt(right, best), f32x4.ne(right, right));
          best = v128.bitselect(right, best, m);
          pos = v128.bitselect(i32x4.splat(1), pos, m);
          const below = v128.load(w + g + <usize>P * PIX);
          m = v128.or(f32x4.gt(below, best), f32x4.ne(below, below));
          best = v128.bitselect(below, best, m);
          pos = v128.bitselect(i32x4.splat(2), pos, m);
          const diag = v128.load(w + g + <usize>P * PIX, PIX);
          m = v128.or(f32x4.gt(diag, best), f32x4.ne(diag, diag));
          best = v128.bitselect(diag, best, m);
          pos = v128.bitselect(i32x4.splat(3), pos, m);
          v128.store(o + g, best);
          v128.store(ix + g, pos);
        }
      }
    }
  }
}

/**
 * Gradient of the pool: da (unpadded S×S) gets dp · mult at the recorded window position and 0 at the other three.
 * dp (unpadded H×H) is the gradient of the pool's output after dropout; mult is dropout's per-element factor
 * (mult and idx share the stride hImg).
 */
export function maxPoolBackward(
  dp: usize, dpImg: usize, mult: usize, idx: usize, hImg: usize, S: i32, da: usize, daImg: usize, i0: i32, i1: i32,
): void {
  const H = S >> 1;
  const zero = f32x4.splat(0);
  const p0 = i32x4.splat(0), p1 = i32x4.splat(1), p2 = i32x4.splat(2), p3 = i32x4.splat(3);
  for (let i = i0; i < i1; i++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < H; x++) {
        const px = <usize>(y * H + x) * PIX;
        const e = <usize>i * hImg + px; // mult and idx
        const w = da + <usize>i * daImg + <usize>(2 * y * S + 2 * x) * PIX;
        for (let g: usize = 0; g < PIX; g += 16) {
          const v = f32x4.mul(v128.load(dp + <usize>i * dpImg + px + g), v128.load(mult + e + g));
          const ix = v128.load(idx + e + g);
          v128.store(w + g, v128.bitselect(v, zero, i32x4.eq(ix, p0)));
          v128.store(w + g, v128.bitselect(v, zero, i32x4.eq(ix, p1)), PIX);
          v128.store(w + g + <usize>S * PIX, v128.bitselect(v, zero, i32x4.eq(ix, p2)));
          v128.store(w + g + <usize>S * PIX, v128.bitselect(v, zero, i32x4.eq(ix, p3)), PIX);
        }
      }
    }
  }
}

/** mix32 of the contract's dropout rule (spec/src/rng.ts), on four lanes at once. */
@inline function mix32x4(x: v128): v128 {
  x = v128.xor(x, i32x4.shr_u(x, 16));
  x = i32x4.mul(x, i32x4.splat(0x21f0aaad));
  x = v128.xor(x, i32x4.shr_u(x, 15));
  x = i32x4.mul(x, i32x4.splat(0x735a2d97));
  return v128.xor(x, i32x4.shr_u(x, 15));
}

/**
 * Dropout with the shared rule: element (i, c, y, x) — NCHW flat index ((i·16 + c)·H + y)·W + x within the batch —
 * is kept when mix32(prefix ^ index) ≥ threshold, where prefix = mix32(mix32(seed ^ 0x9e3779b9) ^ (layer·0x85ebca6b
 * + step)) is computed once per layer and step by the caller. Kept values are scaled by 1/(1 − p).
 * src and dst are H×H images of 16 channels with srcBorder / dstBorder pixels of padding (they may alias);
 * mult (unpadded) records the factor (scale or 0) for the backward pass. `apply` false copies and writes mult = 1.
 */
export function dropout(
  src: usize, srcBorder: i32, dst: usize, dstBorder: i32, H: i32, mult: usize, apply: bool, prefix: u32, threshold: u32,
  scale: f32, i0: i32, i1: i32,
): void {
  const Qs = H + 2 * srcBorder, Qd = H + 2 * dstBorder;
  const sImg = <usize>(Qs * Qs) * PIX, dImg = <usize>(Qd * Qd) * PIX, mImg = <usize>(H * H) * PIX;
  const HW = H * H;
  const pre = i32x4.splat(<i32>prefix), thr = i32x4.splat(<i32>threshold), sc = f32x4.splat(scale);
  const one = f32x4.splat(1), zero = f32x4.splat(0);
  // lane j of group g holds channel 4g + j: NCHW indices step by H·W between lanes
  let lanes = i32x4.splat(0);
  lanes = i32x4.replace_lane(lanes, 1, HW);
  lanes = i32x4.replace_lane(lanes, 2, 2 * HW);
  lanes = i32x4.replace_lane(lanes, 3, 3 * HW);
  for (let i = i0; i < i1; i++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < H; x++) {
        const s = src + <usize>i * sImg + <usize>((y + srcBorder) * Qs + x + srcBorder) * PIX;
        const d = dst + <usize>i * dImg + <usize>((y + dstBorder) * Qd + x + dstBorder) * PIX;
        const m = mult + <usize>i * mImg + <usize>(y * H + x) * PIX;
        for (let g = 0; g < 4; g++) {
          const gb = <usize>g << 4;
          const v = v128.load(s + gb);
          if (!apply) {
            v128.store(d + gb, v);
            v128.store(m + gb, one);
            continue;
          }
          const index = i32x4.add(i32x4.splat((i * 16 + 4 * g) * HW + y * H + x), lanes);
          const keep = i32x4.ge_u(mix32x4(v128.xor(pre, index)), thr);
          v128.store(d + gb, v128.bitselect(f32x4.mul(v, sc), zero, keep));
          v128.store(m + gb, v128.bitselect(sc, zero, keep));
        }
      }
    }
  }
}
