// The network's head: global average pooling, the 16 → 10 linear layer, log-softmax and the NLL loss.
// These touch 16 values per image, so they favour accuracy over speed: sums in f64.
import { PIX } from "./memory-map";

const CLASSES: i32 = 10;
/** Rows of logits / log-probabilities are 16 floats apart (10 used) so each starts on a 64-byte line. */
const ROW: usize = 64;

/** gap[i][c] = mean over the 7×7 pixels of d3[i][·][c] (d3 unpadded). */
export function gapForward(d3: usize, gap: usize, i0: i32, i1: i32): void {
  const img = <usize>49 * PIX;
  const inv = f32x4.splat(49);
  for (let i = i0; i < i1; i++) {
    let p = d3 + <usize>i * img;
    const end = p + img;
    let s0 = f32x4.splat(0), s1 = s0, s2 = s0, s3 = s0;
    while (p < end) {
      s0 = f32x4.add(s0, v128.load(p));
      s1 = f32x4.add(s1, v128.load(p, 16));
      s2 = f32x4.add(s2, v128.load(p, 32));
      s3 = f32x4.add(s3, v128.load(p, 48));
      p += PIX;
    }
    const o = gap + <usize>i * PIX;
    v128.store(o, f32x4.div(s0, inv));
    v128.store(o, f32x4.div(s1, inv), 16);
    v128.store(o, f32x4.div(s2, inv), 32);
    v128.store(o, f32x4.div(s3, inv), 48);
  }
}

/** logits[i][o] = b[o] + Σ_k gap[i][k]·W[o][k], then logp = log-softmax(logits) (max-shifted). */
export function linearLogSoftmax(gap: usize, W: usize, b: usize, logits: usize, logp: usize, i0: i32, i1: i32): void {
  for (let i = i0; i < i1; i++) {
    const g = gap + <usize>i * PIX, lo = logits + <usize>i * ROW, lp = logp + <usize>i * ROW;
    let max = -Infinity;
    for (let o = 0; o < CLASSES; o++) {
      let s: f64 = 0;
      for (let k = 0; k < 16; k++) s += <f64>load<f32>(g + <usize>k * 4) * <f64>load<f32>(W + <usize>(o * 16 + k) * 4);
      const v = <f32>(<f64>load<f32>(b + <usize>o * 4) + s);
      store<f32>(lo + <usize>o * 4, v);
      max = Math.max(max, <f64>v);
    }
    let sum: f64 = 0;
    for (let o = 0; o < CLASSES; o++) sum += Math.exp(<f64>load<f32>(lo + <usize>o * 4) - max);
    const lse = Math.log(sum);
    for (let o = 0; o < CLASSES; o++) store<f32>(lp + <usize>o * 4, <f32>(<f64>load<f32>(lo + <usize>o * 4) - max - lse));
  }
}

/**
 * Backward of NLL(log-softmax(linear(gap))) for images [i0, i1) of a batch of n, mean reduction:
 * dlogits = (softmax − onehot(label)) / n; the fc gradients are added to gW [10][16] and gB [10] (this thread's
 * partial); dd3[i][p][c] = (Σ_o dlogits[i][o]·W[o][c]) / 49 · mult[i][p][c] (the gradient through GAP and drop3).
 * Returns this slice's Σ −logp[label].
 */
export function headBackward(
  logp: usize, labels: usize, gap: usize, W: usize, mult: usize, n: i32, gW: usize, gB: usize, dd3: usize, dd3Img: usize,
  i0: i32, i1: i32,
): f64 {
  let loss: f64 = 0;
  const invN = 1.0 / <f64>n;
  for (let i = i0; i < i1; i++) {
    const lp = logp + <usize>i * ROW, g = gap + <usize>i * PIX;
    const y = load<i32>(labels + <usize>i * 4);
    loss -= <f64>load<f32>(lp + <usize>y * 4);
    // dgap accumulates in 16 f64 lanes held as 8 f64x2
    let dg0 = f64x2.splat(0), dg1 = dg0, dg2 = dg0, dg3 = dg0, dg4 = dg0, dg5 = dg0, dg6 = dg0, dg7 = dg0;
    for (let o = 0; o < CLASSES; o++) {
      // ∂loss/∂logp = −1/n at the label; through log-softmax: dlogit = that + exp(logp)·(1/n)
      const d: f64 = (o == y ? -invN : 0) + Math.exp(<f64>load<f32>(lp + <usize>o * 4)) * invN;
      store<f32>(gB + <usize>o * 4, <f32>(<f64>load<f32>(gB + <usize>o * 4) + d));
      const wr = W + <usize>(o * 16) * 4, gr = gW + <usize>(o * 16) * 4;
      for (let k = 0; k < 16; k++) {
        store<f32>(gr + <usize>k * 4, <f32>(<f64>load<f32>(gr + <usize>k * 4) + d * <f64>load<f32>(g + <usize>k * 4)));
      }
      const dv = f64x2.splat(d);
      dg0 = f64x2.add(dg0, f64x2.mul(dv, f64x2.promote_low_f32x4(v128.load64_zero(wr))));
      dg1 = f64x2.add(dg1, f64x2.mul(dv, f64x2.promote_low_f32x4(v128.load64_zero(wr + 8))));
      dg2 = f64x2.add(dg2, f64x2.mul(dv, f64x2.promote_low_f32x4(v128.load64_zero(wr + 16))));
      dg3 = f64x2.add(dg3, f64x2.mul(dv, f64x2.promote_low_f32x4(v128.load64_zero(wr + 24))));
      dg4 = f64x2.add(dg4, f64x2.mul(dv, f64x2.promote_low_f32x4(v128.load64_zero(wr + 32))));
      dg5 = f64x2.add(dg5, f64x2.mul(dv, f64x2.promote_low_f32x4(v128.load64_zero(wr + 40))));
      dg6 = f64x2.add(dg6, f64x2.mul(dv, f64x2.promote_low_f32x4(v128.load64_zero(wr + 48))));
      dg7 = f64x2.add(dg7, f64x2.mul(dv, f64x2.promote_low_f32x4(v128.load64_zero(wr + 56))));
    }
    // back to f32x4, divided by the 49 pixels GAP averaged
    const inv49 = f64x2.splat(1.0 / 49.0);
    const v0 = join(f64x2.mul(dg0, inv49), f64x2.mul(dg1, inv49));
    const v1 = join(f64x2.mul(dg2, inv49), f64x2.mul(dg3, inv49));
    const v2 = join(f64x2.mul(dg4, inv49), f64x2.mul(dg5, inv49));
    const v3 = join(f64x2.mul(dg6, inv49), f64x2.mul(dg7, inv49));
    for (let p: usize = 0; p < 49 * PIX; p += PIX) {
      const m = mult + <usize>i * 49 * PIX + p, q = dd3 + <usize>i * dd3Img + p;
      v128.store(q, f32x4.mul(v0, v128.load(m)));
      v128.store(q, f32x4.mul(v1, v128.load(m, 16)), 16);
      v128.store(q, f32x4.mul(v2, v128.load(m, 32)), 32);
      v128.store(q, f32x4.mul(v3, v128.load(m, 48)), 48);
    }
  }
  return loss;
}

/** Two f64x2 rounded to f32 and joined into one f32x4 (lanes lo0, lo1, hi0, hi1). */
@inline function join(lo: v128, hi: v128): v128 {
  return v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}
