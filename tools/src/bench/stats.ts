import { mulberry32, type BenchStats } from "@nnspec/spec";

/** Synthetic batch in the normalised pixel range: speed does not depend on the data, so no MNIST is needed for it. */
export function syntheticBatch(n: number, seed: number): { x: Float32Array; labels: Uint8Array } {
  const rand = mulberry32(seed);
  return {
    x: Float32Array.from({ length: n * 784 }, () => rand() * 3 - 0.4),
    labels: Uint8Array.from({ length: n }, () => Math.floor(rand() * 10)),
  };
}

/** Median (mean of the middle two for an even count), min and max of rates derived from timed repetitions. */
export function rateStats(units: number, samplesMs: readonly number[], unit: string): BenchStats {
  if (samplesMs.length === 0) throw new Error("rateStats: no samples");
  const rates = samplesMs.map((ms) => units / (Math.max(ms, 1e-6) / 1000)).sort((a, b) => a - b);
  const mid = rates.length >> 1;
  const median = rates.length % 2 ? rates[mid]! : (rates[mid - 1]! + rates[mid]!) / 2;
  return { median, min: rates[0]!, max: rates.at(-1)!, reps: rates.length, unit };
}

/** Run `fn` `warmup` times untimed (JIT, allocation, kernel compilation), then `reps` times timed; ms per run. */
export async function timeReps(warmup: number, reps: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn(i);
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn(warmup + i);
    out.push(performance.now() - t0);
  }
  return out;
}

/**
 * Smallest work size n (doubling from `start`) whose single run takes at least `targetMs`, so fast operations
 * are timed over enough work to rise above timer resolution and call overhead.
 */
export async function calibrate(
  start: number,
  max: number,
  targetMs: number,
  fn: (n: number) => Promise<unknown>,
): Promise<number> {
  let n = start;
  for (;;) {
    const t0 = performance.now();
    await fn(n);
    const ms = performance.now() - t0;
    if (ms >= targetMs || n >= max) return n;
    // Jump towards the target rather than doubling blindly, but never more than 16× at once.
    n = Math.min(max, Math.max(n * 2, Math.ceil(n * Math.min(16, targetMs / Math.max(ms, 0.01)))));
  }
}
