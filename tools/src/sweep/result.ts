import { z } from "zod";
import { learningRateSchema, net222ConfigSchema, precisionSchema, stepsSchema } from "@nnspec/spec";

/**
 * sweep.json: the comparison table of one sweep. JSON has no NaN/Infinity, so a non-finite error is stored as
 * null together with `divergedAtStep`.
 */
const errorValue = z.number().nullable();
const chartFiles = z.object({ svg: z.string(), png: z.string() }).strict();

export const sweepRowSchema = z
  .object({
    lr: learningRateSchema,
    eTotalStart: errorValue,
    eTotalFinal: errorValue,
    stepsToThreshold: z.number().int().min(0).nullable(),
    divergedAtStep: z.number().int().min(0).nullable(),
    divergedQuantity: z.string().nullable(),
    /** Chart files relative to the sweep folder (null when charts were not asked for). */
    chart: chartFiles.nullable(),
  })
  .strict();
export type SweepRow = z.infer<typeof sweepRowSchema>;

export const sweepSummarySchema = z
  .object({
    kind: z.literal("nnspec.sweep"),
    formatVersion: z.literal(1),
    backend: z
      .object({ name: z.string(), version: z.string(), precision: precisionSchema, device: z.string() })
      .strict(),
    /** Where the configuration came from: "class values" or the config file path. */
    configSource: z.string(),
    config: net222ConfigSchema,
    steps: stepsSchema,
    threshold: z.number().positive(),
    rows: z.array(sweepRowSchema).min(1),
    combinedChart: chartFiles.nullable(),
  })
  .strict();
export type SweepSummary = z.infer<typeof sweepSummarySchema>;

/** NaN/±Infinity → null, for JSON. */
export const jsonNumber = (v: number): number | null => (Number.isFinite(v) ? v : null);
