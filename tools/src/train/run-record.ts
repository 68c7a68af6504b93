import { cpus, arch, platform, release, totalmem } from "node:os";
import { z } from "zod";
import { finiteNumber, manifestSchema, precisionSchema, recipeSchema } from "@nnspec/spec";

/** One finished epoch (1-based `epoch`), as formatVersion 1 recorded it. */
export const epochRecordV1Schema = z
  .object({
    epoch: z.number().int().min(1),
    trainLoss: finiteNumber,
    trainAccuracy: finiteNumber, // 0..1, running accuracy over the epoch (train mode, dropout on)
    testLoss: finiteNumber,
    testAccuracy: finiteNumber, // 0..1
    imagesPerSecond: finiteNumber, // training images / training seconds (excludes evaluation)
    trainSeconds: finiteNumber,
    evalSeconds: finiteNumber,
    lastLr: finiteNumber,
  })
  .strict();

/** One finished epoch, and which backend(s) trained it ("name version (precision)"; [] = not recorded, formatVersion 1). */
export const epochRecordSchema = epochRecordV1Schema.extend({ trainedBy: z.array(z.string()) }).strict();
export type EpochRecord = z.infer<typeof epochRecordSchema>;

/** Optimizer steps [fromStep, toStep) trained by one backend in one invocation, and how its momentum began. */
export const segmentSchema = z
  .object({
    backend: z.string(),
    version: z.string(),
    precision: precisionSchema,
    fromStep: z.number().int().min(0),
    toStep: z.number().int().min(0),
    /** fresh: a new run; restored: from the checkpoint; restarted: from zero on a resume (--restart-momentum). */
    momentum: z.enum(["fresh", "restored", "restarted"]),
    resumedFrom: z.string().nullable(),
  })
  .strict();
export type Segment = z.infer<typeof segmentSchema>;

export const segmentLabel = (s: Pick<Segment, "backend" | "version" | "precision">): string =>
  `${s.backend} ${s.version} (${s.precision})`;

/** Why a run stopped before its last epoch: where, and what was non-finite or which signal came. */
export const runStopSchema = z
  .object({
    reason: z.enum(["diverged", "interrupted"]),
    /** 1-based epoch and batch; batch null = during the epoch's evaluation or at its end. */
    epoch: z.number().int().min(1),
    batch: z.number().int().min(1).nullable(),
    /** Optimizer steps done when it stopped. */
    step: z.number().int().min(0),
    detail: z.string(),
  })
  .strict();
export type RunStop = z.infer<typeof runStopSchema>;

export const machineSchema = z
  .object({
    platform: z.string(),
    release: z.string(),
    arch: z.string(),
    cpuModel: z.string(),
    cpuCount: z.number().int(),
    totalMemoryBytes: z.number(),
    node: z.string(),
  })
  .strict();
export type MachineInfo = z.infer<typeof machineSchema>;

export function machineInfo(): MachineInfo {
  const c = cpus();
  return {
    platform: platform(),
    release: release(),
    arch: arch(),
    cpuModel: c[0]?.model.trim() ?? "unknown",
    cpuCount: c.length,
    totalMemoryBytes: totalmem(),
    node: process.version,
  };
}

/** The record `nnspec train` writes as run.json. */
export const runRecordSchema = z
  .object({
    kind: z.literal("nnspec.train-run"),
    formatVersion: z.literal(2),
    /** complete: every epoch ran; diverged: stopped at a non-finite value; interrupted: stopped by SIGINT/SIGTERM. */
    status: z.enum(["complete", "diverged", "interrupted"]),
    stop: runStopSchema.nullable(),
    /** The backend of this invocation (`segments` and each epoch's `trainedBy` say who trained what). */
    backend: manifestSchema,
    recipe: recipeSchema,
    seed: z.number().int(),
    limit: z.number().int().min(1).nullable(),
    testLimit: z.number().int().min(1).nullable(),
    trainImages: z.number().int().min(1),
    testImages: z.number().int().min(1),
    evalBatchSize: z.number().int().min(1),
    stepsPerEpoch: z.number().int().min(1),
    resumedFrom: z.string().nullable(),
    segments: z.array(segmentSchema),
    epochs: z.array(epochRecordSchema),
    /** Training loss of every optimizer step of the whole run (including steps before a resume). */
    batchLoss: z.array(finiteNumber),
    /** The last checkpoint with only finite values (what --resume takes), or null when none was written. */
    checkpoint: z
      .object({ path: z.string(), epochsCompleted: z.number().int().min(0), globalStep: z.number().int().min(0) })
      .strict()
      .nullable(),
    /** This invocation only (a resumed run counts from the resume). */
    wallSeconds: finiteNumber,
    imagesPerSecond: finiteNumber,
    startedAt: z.string(),
    finishedAt: z.string(),
    machine: machineSchema,
  })
  .strict();
export type RunRecord = z.infer<typeof runRecordSchema>;
