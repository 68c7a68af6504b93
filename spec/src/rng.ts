/**
 * Seeded randomness shared by every backend, so that "same seed" means the same numbers everywhere.
 * Integer-only 32-bit arithmetic: portable to JS, WASM, and GPU shaders.
 */
export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x21f0aaad) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x735a2d97) >>> 0;
  return (x ^ (x >>> 15)) >>> 0;
}

/** Sequential generator (mulberry32): parameter init, data shuffling. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The dropout mask rule of the contract. Element `index` (NCHW flat index within the batch) of dropout layer
 * `layer` (0, 1, 2) in training forward number `step` under `seed` is kept when its 32-bit hash ≥ p·2^32.
 * Kept elements are scaled by 1/(1−p) (inverted dropout); eval mode is the identity.
 */
export function dropoutHash(seed: number, layer: number, step: number, index: number): number {
  return mix32(mix32(mix32((seed ^ 0x9e3779b9) >>> 0) ^ ((layer * 0x85ebca6b + step) >>> 0)) ^ (index >>> 0));
}
export function dropoutKeeps(seed: number, layer: number, step: number, index: number, p: number): boolean {
  return dropoutHash(seed, layer, step, index) >= Math.floor(p * 4294967296);
}

/** In-place Fisher–Yates shuffle of 0..n-1 under a seed (training order). */
export function shuffledIndices(n: number, seed: number): Uint32Array {
  const rand = mulberry32(seed);
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = idx[i]!;
    idx[i] = idx[j]!;
    idx[j] = t;
  }
  return idx;
}
