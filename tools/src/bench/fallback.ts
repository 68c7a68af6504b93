import type { BenchSettings, BenchStats } from "@nnspec/spec";
import type { BenchJob } from "./protocol.ts";

/**
 * CPU fallback adapters. A software adapter (SwiftShader, llvmpipe, lavapipe) runs a GPU backend's kernels on the
 * CPU: the WebGPU backends train the CNN at 0.5–5 images/s there, so the default budget would take hours and end
 * in a phase timeout. Decided from what the backend reports — its manifest's device line (the WebGPU backends write
 * "CPU fallback adapter" from GPUAdapterInfo.isFallbackAdapter; WebGL backends name their renderer) — never from
 * its name. Used by the Node worker and the Chromium page (measure.ts) and by the report (format.ts): no node: imports.
 */

const FALLBACK_DEVICE = /fallback|swiftshader|llvmpipe|lavapipe/i;
const SOFTWARE_ADAPTERS = ["SwiftShader", "llvmpipe", "lavapipe"] as const;

/** Whether a device line names a software (CPU) adapter. */
export const isCpuFallback = (device: string): boolean => FALLBACK_DEVICE.test(device);

/** "CPU fallback adapter (SwiftShader)": the adapter named when the device line names a known one. */
export function fallbackLabel(device: string): string {
  const d = device.toLowerCase();
  const name = SOFTWARE_ADAPTERS.find((n) => d.includes(n.toLowerCase()));
  return `CPU fallback adapter${name ? ` (${name})` : ""}`;
}

/**
 * Repetitions on a fallback: one timed batch-128 step after warm-up (each takes 30 s to 4 min there) and a few
 * batch-1 forwards; the 2-2-2 figure keeps its budget (a repetition is calibrated to ~300 ms anyway).
 */
export const FALLBACK_REPS = { train: 1, infer128: 1, infer1: 5 } as const;

/** The job's repetitions, or the reduced ones when the backend's device line names a CPU fallback. */
export function repsFor(device: string, reps: BenchJob["reps"]): BenchJob["reps"] {
  if (!isCpuFallback(device)) return reps;
  return {
    train: Math.min(reps.train, FALLBACK_REPS.train),
    infer128: Math.min(reps.infer128, FALLBACK_REPS.infer128),
    infer1: Math.min(reps.infer1, FALLBACK_REPS.infer1),
    net222: reps.net222,
  };
}

/** The row note of a reduced budget; format.ts finds such rows by its start. */
export const FALLBACK_NOTE_PREFIX = "reduced budget:";

export function fallbackNote(device: string, reps: BenchJob["reps"]): string {
  return (
    `${FALLBACK_NOTE_PREFIX} ${fallbackLabel(device)}, so ${reps.train} timed repetition(s) after warm-up for CNN ` +
    `training, ${reps.infer128} for inference at batch 128, ${reps.infer1} at batch 1; MNIST training not run`
  );
}

const duration = (s: number) =>
  s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`;

/**
 * The MNIST phase's skip reason on a fallback, with the time the budget would take at the speeds just measured
 * (training images at the batch-128 training rate, each epoch's evaluation at the batch-128 inference rate).
 */
export function fallbackMnistSkip(
  device: string,
  s: Pick<BenchSettings, "epochs" | "limit" | "testLimit">,
  speed: { train?: BenchStats | null; infer128?: BenchStats | null },
): string {
  const train = s.epochs * (s.limit ?? 60_000);
  const test = s.epochs * (s.testLimit ?? 10_000);
  const budget = `${s.epochs} epoch${s.epochs === 1 ? "" : "s"} on ${s.limit ?? 60_000} images`;
  const rate = speed.train?.median;
  if (!rate || !Number.isFinite(rate))
    return `${fallbackLabel(device)}: not run — ${budget}, no training speed measured to estimate it`;
  const eval128 = speed.infer128?.median;
  const seconds = train / rate + (eval128 && Number.isFinite(eval128) ? test / eval128 : 0);
  return `${fallbackLabel(device)}: not run — ${budget} would take ~${duration(seconds)} at the measured ${rate.toPrecision(3)} img/s`;
}

/** Whether a row's MNIST phase was skipped by this rule (the detail starts with the fallback label). */
export const skippedForFallback = (p: { name: string; status: string; detail?: string | undefined }) =>
  p.name === "mnist-train" && p.status === "skipped" && (p.detail ?? "").startsWith("CPU fallback adapter");
