import { z } from "zod";
import { finiteNumber } from "../numbers.ts";

/**
 * A CNN golden case: `<name>.json` (this manifest) + `<name>.bin` (little-endian float64 tensors, concatenated).
 * Every tensor names its byte offset and shape; the suite checks whatever the manifest lists, so a new case is
 * a new pair of files, not new code. See fixtures/README.md.
 */
export const tensorEntrySchema = z
  .object({
    offset: z.number().int().min(0), // in bytes, multiple of 8
    shape: z.array(z.number().int().min(0)),
  })
  .strict();
export type TensorEntry = z.infer<typeof tensorEntrySchema>;

/**
 * A tensor file named by a manifest: a plain file name in the manifest's own folder. No "/" or "\\", no "." or
 * "..", not absolute — a manifest must never make a reader open a file elsewhere.
 */
export const binFileNameSchema = z
  .string()
  .min(1, "must not be empty")
  .refine(
    (s) => !/[/\\]/.test(s) && s !== "." && s !== ".." && !s.includes("\0"),
    "must be a plain file name in the manifest's folder (no '/', '\\', '..' or absolute path)",
  );

const tensorGroup = z.record(z.string(), tensorEntrySchema);

export const cnnFixtureSchema = z
  .object({
    kind: z.literal("cnn.golden"),
    formatVersion: z.literal(1),
    description: z.string(),
    generator: z.string(),
    torchVersion: z.string(),
    dtype: z.literal("float64"),
    batch: z.number().int().min(1),
    seed: z.number().int(),
    sgd: z.object({ lr: finiteNumber, momentum: finiteNumber, weightDecay: finiteNumber }).strict(),
    loss: z.array(finiteNumber).min(1), // loss of each training step
    binFile: binFileNameSchema,
    binBytes: z.number().int().min(0),
    tensors: z
      .object({
        input: tensorEntrySchema,
        labels: tensorEntrySchema,
        parameters: tensorGroup, // before the first step
        blocks: tensorGroup, // train-mode forward of step 1
        gradients: tensorGroup, // step 1
        buffersAfterStep1: tensorGroup,
        parametersAfterStep2: tensorGroup,
        buffersAfterStep2: tensorGroup,
        evalLogProbs: tensorEntrySchema, // eval-mode forward after step 2
      })
      .strict(),
  })
  .strict();
export type CnnFixture = z.infer<typeof cnnFixtureSchema>;
