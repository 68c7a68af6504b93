import { mix32 } from "@nnspec/spec";

/**
 * The contract's dropout mask (rng.ts `dropoutKeeps`) for one layer, laid out NHWC for tfjs but decided by
 * each element's NCHW flat index, as the rule requires. Values are 0 or 1/(1−p) (inverted dropout); `p` is the
 * forward's rate for this layer (dropoutRate: the options' rates, else the architecture's), 0 = all kept at scale 1.
 * The per-layer prefix of `dropoutHash` is hoisted out of the loop; the test checks equality with the rule.
 */
export function dropoutMaskNhwc(
  seed: number,
  layer: number,
  step: number,
  p: number,
  n: number,
  c: number,
  h: number,
  w: number,
): Float32Array {
  const prefix = mix32(mix32((seed ^ 0x9e3779b9) >>> 0) ^ ((layer * 0x85ebca6b + step) >>> 0));
  const threshold = Math.floor(p * 4294967296);
  const scale = 1 / (1 - p);
  const out = new Float32Array(n * h * w * c);
  const plane = h * w;
  let o = 0;
  for (let s = 0; s < n; s++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const base = s * c * plane + y * w + x;
        for (let ch = 0; ch < c; ch++, o++) {
          const index = base + ch * plane;
          if (mix32(prefix ^ (index >>> 0)) >= threshold) out[o] = scale;
        }
      }
    }
  }
  return out;
}
