import { z } from "zod";
import { finiteNumber } from "./numbers.ts";
import { manifestSchema } from "./backend.ts";

/**
 * `nnspec bench` results (results.json): every backend side by side, accuracy against the goldens and speed.
 * Kept in spec so any tool (README scoreboard, dashboards) reads the same validated format.
 */

/** Repeated timings of one figure, warm-up excluded; figures are rates (bigger is faster) unless `unit` says otherwise. */
export const benchStatsSchema = z
  .object({
    median: finiteNumber,
    min: finiteNumber,
    max: finiteNumber,
    reps: z.number().int().min(1),
    unit: z.string().min(1),
  })
  .strict();
export type BenchStats = z.infer<typeof benchStatsSchema>;

/** Conformance groups: 2-2-2 trajectories and the CNN's forward / gradients / SGD steps / dropout rule. */
export const BENCH_CHECK_GROUPS = ["net222", "cnn.forward", "cnn.backward", "cnn.step", "cnn.dropout"] as const;
export const benchCheckGroupSchema = z.enum(BENCH_CHECK_GROUPS);
export type BenchCheckGroup = z.infer<typeof benchCheckGroupSchema>;

const tallyShape = {
  checks: z.number().int().min(0),
  passed: z.number().int().min(0),
  failed: z.number().int().min(0),
  notImplemented: z.number().int().min(0),
  /** Worst error / tolerance over the numeric checks that ran (≤ 1 passes); null when none ran or a value was non-finite. */
  worstRatio: finiteNumber.nullable(),
};

export const benchConformanceSchema = z
  .object({
    ...tallyShape,
    wallSeconds: finiteNumber,
    /** The golden files checked (--quick checks a subset). */
    fixtures: z.array(z.string()),
    groups: z.array(z.object({ group: benchCheckGroupSchema, ...tallyShape }).strict()),
  })
  .strict();
export type BenchConformance = z.infer<typeof benchConformanceSchema>;

export const benchSpeedSchema = z
  .object({
    net222StepsPerSecond: benchStatsSchema.nullable(),
    trainImagesPerSecond: benchStatsSchema.nullable(),
    inferImagesPerSecondBatch1: benchStatsSchema.nullable(),
    inferImagesPerSecondBatch128: benchStatsSchema.nullable(),
  })
  .strict();
export type BenchSpeed = z.infer<typeof benchSpeedSchema>;

export const benchStartupSchema = z
  .object({
    /** Spawn → the worker process is running its first line (node, module loader). */
    processMs: finiteNumber,
    /** The backend's own creation (module import + createBackend, wasm init included). */
    backendLoadMs: finiteNumber,
    /** Spawn → the first computed result (a batch-1 CNN forward, or a 2-2-2 forward for 2-2-2-only backends). */
    firstResultMs: finiteNumber,
  })
  .strict();

export const benchTrainingSchema = z
  .object({
    epochs: z.number().int().min(1),
    trainImages: z.number().int().min(1),
    testImages: z.number().int().min(1),
    testAccuracy: finiteNumber,
    testLoss: finiteNumber,
    wallSeconds: finiteNumber,
    imagesPerSecond: finiteNumber,
    /** Training loss of every optimizer step. */
    batchLoss: z.array(finiteNumber),
    /** Test accuracy after each epoch. */
    epochTestAccuracy: z.array(finiteNumber),
  })
  .strict();
export type BenchTraining = z.infer<typeof benchTrainingSchema>;

/**
 * An inference peer's numerics (the ONNX Runtime rows): its log-probs on a fixed batch against the PyTorch float32
 * peer's for the same exported model, under the float32 value tolerance (tolerance.ts). Not a golden check: the
 * goldens are train-mode float64, the peers run the model in eval mode.
 */
export const benchAgreementSchema = z
  .object({
    /** What the outputs were compared with, e.g. "PyTorch 1.13.0 float32, CPU, eval". */
    reference: z.string().min(1),
    /** The compared output, e.g. "logProbs". */
    quantity: z.string().min(1),
    /** Images in the fixed batch. */
    images: z.number().int().min(1),
    /** The tolerance's precision: "float32". */
    precision: z.string().min(1),
    /** Worst |error| / tolerance (≤ 1 agrees); null when a value was non-finite. */
    worstRatio: finiteNumber.nullable(),
    /** Worst |error|; null when a value was non-finite. */
    worstAbsolute: finiteNumber.nullable(),
    pass: z.boolean(),
  })
  .strict();
export type BenchAgreement = z.infer<typeof benchAgreementSchema>;

export const BENCH_STATUSES = ["ok", "failed", "timed-out", "skipped"] as const;
export const benchStatusSchema = z.enum(BENCH_STATUSES);
export type BenchStatus = z.infer<typeof benchStatusSchema>;

export const benchPhaseSchema = z
  .object({
    name: z.string().min(1),
    status: benchStatusSchema,
    seconds: finiteNumber,
    detail: z.string().optional(),
  })
  .strict();

export const benchEntrySchema = z
  .object({
    /** Row id, e.g. "reference-float32", "pytorch". */
    id: z.string().min(1),
    /**
     * "backend": an nnspec backend in a Node child process; "peer": a comparison outside nnspec (the PyTorch peer, and
     * the ONNX Runtime inference peers); "browser": a backend in Chromium.
     */
    kind: z.enum(["backend", "peer", "browser"]),
    specifier: z.string(),
    options: z.record(z.unknown()),
    manifest: manifestSchema.nullable(),
    /** Free-text device/version line (the peer has no nnspec manifest). */
    device: z.string(),
    precision: z.string(),
    status: benchStatusSchema,
    /** Why the entry failed, timed out or was skipped (the phase it was in). */
    failure: z.object({ phase: z.string(), message: z.string() }).strict().nullable(),
    phases: z.array(benchPhaseSchema),
    startup: benchStartupSchema.nullable(),
    conformance: benchConformanceSchema.nullable(),
    speed: benchSpeedSchema,
    training: benchTrainingSchema.nullable(),
    /** Inference peers only: their outputs against the PyTorch peer's (absent elsewhere). */
    agreement: benchAgreementSchema.optional(),
    /** RSS high-water mark of the entry's own process (bytes); for browser rows see memoryKind. */
    peakRssBytes: finiteNumber.nullable(),
    /**
     * What peakRssBytes measured. Absent or "process": the row's own process. "chromium-renderer-gpu" (browser
     * rows): the RSS high-water mark of Chromium's page renderer process (JS, wasm, workers) plus that of its GPU
     * process (WebGL, SwiftShader without a GPU).
     */
    memoryKind: z.enum(["process", "chromium-renderer-gpu"]).optional(),
    wallSeconds: finiteNumber,
    notes: z.array(z.string()),
  })
  .strict();
export type BenchEntry = z.infer<typeof benchEntrySchema>;

export const benchMachineSchema = z
  .object({
    cpuModel: z.string(),
    cores: z.number().int().min(1),
    totalMemoryBytes: finiteNumber,
    node: z.string(),
    platform: z.string(),
    arch: z.string(),
    /** 1-minute load average when the bench started (other work skews timings). */
    loadAverage: finiteNumber,
  })
  .strict();
export type BenchMachine = z.infer<typeof benchMachineSchema>;

export const benchSettingsSchema = z
  .object({
    mode: z.enum(["quick", "default", "full"]),
    epochs: z.number().int().min(1),
    /** Training images (first N of the seed-shuffled set); null = all 60000. */
    limit: z.number().int().min(1).nullable(),
    testLimit: z.number().int().min(1).nullable(),
    batchSize: z.number().int().min(1),
    maxLr: finiteNumber,
    seed: z.number().int().min(0),
    /** Timed repetitions per speed figure (after warm-up). */
    reps: z.number().int().min(1),
    timeoutSeconds: finiteNumber,
  })
  .strict();
export type BenchSettings = z.infer<typeof benchSettingsSchema>;

export const benchResultsSchema = z
  .object({
    kind: z.literal("nnspec.bench"),
    formatVersion: z.literal(1),
    startedAt: z.string(),
    finishedAt: z.string(),
    machine: benchMachineSchema,
    settings: benchSettingsSchema,
    /** The PyTorch peer: whether it could run, and why not. */
    peer: z.object({ available: z.boolean(), reason: z.string().nullable(), version: z.string().nullable() }).strict(),
    entries: z.array(benchEntrySchema),
  })
  .strict();
export type BenchResults = z.infer<typeof benchResultsSchema>;
