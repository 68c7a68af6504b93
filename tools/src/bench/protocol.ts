import { z } from "zod";
import {
  benchAgreementSchema,
  benchConformanceSchema,
  benchSettingsSchema,
  benchSpeedSchema,
  benchTrainingSchema,
  finiteNumber,
  manifestSchema,
} from "@nnspec/spec";

/**
 * Parent ↔ worker protocol. The parent writes a job file; the worker (a Node child for a backend, or the Python
 * peer) reports on file descriptor 3, one JSON message per line, so backends' own console output on stdout/stderr
 * can never corrupt it. Every line is validated here (it crosses a process boundary).
 */

/** Measured phases, in run order; each has its own timeout. */
export const BENCH_PHASES = [
  "load",
  "conformance",
  "net222-speed",
  "train-speed",
  "infer-speed",
  "mnist-train",
] as const;
export const benchPhaseNameSchema = z.enum(BENCH_PHASES);
export type BenchPhaseName = z.infer<typeof benchPhaseNameSchema>;

/** The four stages a reader sees (a failure is attributed to one of them): load, checks, speed, training. */
export function stageOf(phase: string): "load" | "checks" | "speed" | "training" | string {
  if (phase === "load") return "load";
  if (phase === "conformance") return "checks";
  if (phase.endsWith("-speed")) return "speed";
  if (phase === "mnist-train") return "training";
  return phase;
}

/** The skip reason of the training phase when there is no MNIST data (worker and peer say it the same way). */
export const NO_MNIST = "no MNIST data (set MNIST_DIR)";

/** The skip reason of the training phases of an inference-only peer (the ONNX Runtime rows). */
export const INFERENCE_ONLY = "inference only";

export const benchJobSchema = z
  .object({
    id: z.string().min(1),
    specifier: z.string().min(1),
    options: z.record(z.unknown()),
    settings: benchSettingsSchema,
    /** Golden files to check (--quick: a subset); empty = every committed golden. */
    fixtures: z.array(z.string()),
    /** MNIST folder for the training phase; null: skip it (no data). */
    mnistDir: z.string().nullable(),
    /**
     * The PyTorch peer only: a JSON file (peerDataSchema) with the training subset, the initial parameters and the
     * 2-2-2 problem, so the peer trains on the same images from the same start as the backends.
     */
    peerDataFile: z.string().nullable(),
    /** ONNX Runtime peers only: the exported model and the fixed batch with PyTorch float32's log-probs for it. */
    onnx: z
      .object({ model: z.string().min(1), check: z.string().min(1) })
      .strict()
      .optional(),
    /** Wall-clock ms (Date.now) when the parent spawned the worker: start-up is measured from here. */
    spawnedAt: z.number(),
    /** Per-figure sample counts. */
    reps: z
      .object({
        train: z.number().int().min(1),
        infer128: z.number().int().min(1),
        infer1: z.number().int().min(1),
        net222: z.number().int().min(1),
      })
      .strict(),
    /** Target milliseconds for one timed 2-2-2 repetition (the step count is calibrated to reach it). */
    net222TargetMs: z.number().positive(),
  })
  .strict();
export type BenchJob = z.infer<typeof benchJobSchema>;

const patchSchema = z
  .object({
    manifest: manifestSchema.optional(),
    device: z.string().optional(),
    precision: z.string().optional(),
    startup: z
      .object({ processAt: finiteNumber, backendLoadMs: finiteNumber, firstResultAt: finiteNumber })
      .strict()
      .optional(),
    conformance: benchConformanceSchema.optional(),
    speed: benchSpeedSchema.partial().optional(),
    training: benchTrainingSchema.optional(),
    agreement: benchAgreementSchema.optional(),
    note: z.string().optional(),
  })
  .strict();
export type BenchPatch = z.infer<typeof patchSchema>;

export const workerMessageSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("phase"), name: benchPhaseNameSchema }).strict(),
  z
    .object({
      type: z.literal("phase-end"),
      name: benchPhaseNameSchema,
      status: z.enum(["ok", "failed", "skipped"]),
      detail: z.string().optional(),
    })
    .strict(),
  z.object({ type: z.literal("progress"), text: z.string() }).strict(),
  z.object({ type: z.literal("data"), patch: patchSchema, rssBytes: finiteNumber.optional() }).strict(),
  z.object({ type: z.literal("done") }).strict(),
]);
export type WorkerMessage = z.infer<typeof workerMessageSchema>;

export const peerDataSchema = z
  .object({
    /** Indices into the 60000 training images, in trainingSubset() order. */
    subset: z.array(z.number().int().min(0)),
    /** initParameters(seed), PyTorch state_dict names → flat values. */
    parameters: z.record(z.array(z.number())),
    net222: z.object({ config: z.record(z.number()), lr: z.number() }).strict(),
  })
  .strict();
export type PeerData = z.infer<typeof peerDataSchema>;

/** Learning rate of the timed 2-2-2 training runs (any valid rate costs the same). */
export const NET222_BENCH_LR = 0.5;
