import { NORMALIZE, mix32, type Augmentation } from "@nnspec/spec";
import { normalizedBatch } from "./mnist.ts";
import type { MnistSplit } from "./idx.ts";

/**
 * Training-data augmentation (the recipe's `augmentation`, spec/src/cnn/optim.ts), done here in the data pipeline so
 * that every backend — and the PyTorch peer, which is fed these batches — trains on byte-identical inputs.
 *
 * The rule:
 * - Parameters per training image: draw k of image `image` (its index in the full training set) in 0-based epoch
 *   `epoch` of a run with seed `seed` is u_k = 2·augmentHash(seed, epoch, image, k)/2³² − 1 ∈ [−1, 1); the angle is
 *   maxDegrees·u_0, the shifts maxShift·u_1 (x, right) and maxShift·u_2 (y, down), the scale 1 + maxScale·u_3.
 *   Counter-based (no generator state), so a batch depends on nothing but these numbers: not on batch size, order,
 *   --limit or a resume.
 * - Geometry: the image is mapped by T(p) = c + s·R(θ)·(p − c) + t about the centre c = (13.5, 13.5) of the
 *   28 × 28 pixel grid (pixel centres at integers), R(θ) counter-clockwise on screen (y points down). Output pixel p
 *   takes the input at T⁻¹(p) = c + R(−θ)·(p − c − t)/s, interpolated bilinearly from the raw 0..255 bytes, with 0
 *   (black, MNIST's background) outside the image; float64 throughout.
 * - Then the spec's normalisation (v/255 − mean)/std in float64, stored as float32: at the identity transform this is
 *   exactly `normalizedBatch`.
 */

export interface AugmentParams {
  /** Rotation, degrees, counter-clockwise on screen. */
  readonly degrees: number;
  /** Translation in pixels: x to the right, y down. */
  readonly dx: number;
  readonly dy: number;
  readonly scale: number;
}
export const IDENTITY_PARAMS: AugmentParams = { degrees: 0, dx: 0, dy: 0, scale: 1 };

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const CENTRE = (SIDE - 1) / 2;

/** 32-bit hash of (seed, epoch, image, draw); its own salt, so it never repeats the dropout rule's numbers. */
export function augmentHash(seed: number, epoch: number, image: number, draw: number): number {
  return mix32(mix32(mix32(mix32((seed ^ 0x2545f491) >>> 0) ^ (epoch >>> 0)) ^ (image >>> 0)) ^ (draw >>> 0));
}

const uniform = (h: number) => (2 * h) / 4294967296 - 1;

/** The transform of training image `image` in epoch `epoch` (0-based) of a run with `seed`. */
export function augmentParams(aug: Augmentation, seed: number, epoch: number, image: number): AugmentParams {
  if (aug.kind === "none") return IDENTITY_PARAMS;
  const u = (k: number) => uniform(augmentHash(seed, epoch, image, k));
  if (aug.kind === "rotate") return { ...IDENTITY_PARAMS, degrees: aug.maxDegrees * u(0) };
  return {
    degrees: aug.maxDegrees * u(0),
    dx: aug.maxShift * u(1),
    dy: aug.maxShift * u(2),
    scale: 1 + aug.maxScale * u(3),
  };
}

/**
 * Warp one 28 × 28 image (raw 0..255 values, row-major) by `p` into `out` (float64 0..255), bilinear, 0 outside.
 * At the identity every sample lands on a pixel centre with weights 1 and 0, so the output equals the input exactly.
 */
export function warpImage(src: ArrayLike<number>, p: AugmentParams, out: Float64Array, srcOffset = 0): Float64Array {
  const theta = (p.degrees * Math.PI) / 180;
  // Exact 1 and 0 at 0° (Math.cos(0) = 1, Math.sin(0) = 0), so the identity stays exact.
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  const inv = 1 / p.scale;
  const at = (x: number, y: number) => (x >= 0 && x < SIDE && y >= 0 && y < SIDE ? src[srcOffset + y * SIDE + x]! : 0);
  for (let y = 0; y < SIDE; y++) {
    const v = (y - CENTRE - p.dy) * inv;
    for (let x = 0; x < SIDE; x++) {
      const u = (x - CENTRE - p.dx) * inv;
      const sx = CENTRE + (u * cos - v * sin);
      const sy = CENTRE + (u * sin + v * cos);
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      if (x0 < -1 || x0 >= SIDE || y0 < -1 || y0 >= SIDE) {
        out[y * SIDE + x] = 0;
        continue;
      }
      const fx = sx - x0;
      const fy = sy - y0;
      const top = (1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0);
      const bottom = (1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1);
      out[y * SIDE + x] = (1 - fy) * top + fy * bottom;
    }
  }
  return out;
}

export interface BatchAugmentation {
  readonly augmentation: Augmentation;
  readonly seed: number;
  /** 0-based epoch of the run. */
  readonly epoch: number;
}

/**
 * A training batch: images `indices` (indices into the full training split) as [n, 1, 28, 28] float32, augmented by
 * the rule above and normalised with the spec constants. "none" is exactly `normalizedBatch`.
 */
export function trainingBatch(
  split: MnistSplit,
  indices: ArrayLike<number>,
  a: BatchAugmentation,
  out?: Float32Array,
): Float32Array {
  if (a.augmentation.kind === "none") return normalizedBatch(split, indices, out);
  const n = indices.length;
  const dst = out && out.length >= n * PIXELS ? out.subarray(0, n * PIXELS) : new Float32Array(n * PIXELS);
  const warped = new Float64Array(PIXELS);
  for (let b = 0; b < n; b++) {
    const image = indices[b]!;
    warpImage(split.images, augmentParams(a.augmentation, a.seed, a.epoch, image), warped, image * PIXELS);
    const o = b * PIXELS;
    // The same expression as normalizedBatch's table, in float64, so the identity gives the same float32 bits.
    for (let q = 0; q < PIXELS; q++) dst[o + q] = (warped[q]! / 255 - NORMALIZE.mean) / NORMALIZE.std;
  }
  return dst;
}
