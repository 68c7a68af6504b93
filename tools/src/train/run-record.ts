import { cpus, arch, platform, release, totalmem } from "node:os";
import { z } from "zod";
import { finiteNumber, manifestSchema, recipeSchema } from "@nnspec/spec";

/** One finished epoch (1-based `epoch`). */
export const epochRecordSchema = z.object({
  epoch: z.number().int().min(1),
  trainLoss: finiteNumber,
  trainAccuracy: finiteNumber, // 0..1, running accuracy over the epoch (train mode, dropout on)
  testLoss: finiteNumber,
  testAccuracy: finiteNumber, // 0..1
  imagesPerSecond: finiteNumber, // training images / training seconds (excludes evaluation)
  trainSeconds: finiteNumber,
  evalSeconds: finiteNumber,
  lastLr: finiteNumber,
}).strict();
export type EpochRecord = z.infer<typeof epochRecordSchema>;

export const machineSchema = z.object({
  platform: z.string(),
  release: z.string(),
  arch: z.string(),
  cpuModel: z.string(),
  cpuCount: z.number().int(),
  totalMemoryBytes: z.number(),
  node: z.string(),
}).strict();
export type MachineInfo = z.infer<typeof machineSchema>;

export function machineInfo(): MachineInfo {
  const c = cpus();
  return { platform: platform(), release: release(), arch: arch(), cpuModel: c[0]?.model.trim() ?? "unknown", cpuCount: c.length, totalMemoryBytes: totalmem(), node: process.version };
}

/** The record `nnspec train` writes as run.json. */
export const runRecordSchema = z.object({
  kind: z.literal("nnspec.train-run"),
  formatVersion: z.literal(1),
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
  epochs: z.array(epochRecordSchema),
  /** Training loss of every optimizer step of the whole run (including steps before a resume). */
  batchLoss: z.array(finiteNumber),
  /** This invocation only (a resumed run counts from the resume). */
  wallSeconds: finiteNumber,
  imagesPerSecond: finiteNumber,
  startedAt: z.string(),
  finishedAt: z.string(),
  machine: machineSchema,
}).strict();
export type RunRecord = z.infer<typeof runRecordSchema>;
