import { z } from "zod";
import { finiteNumber } from "../numbers.ts";

/**
 * A CNN golden case: `<name>.json` (this manifest) + `<name>.bin` (little-endian float64 tensors, concatenated).
 * Every tensor names its byte offset and shape; the suite checks whatever the manifest lists, so a new case is
 * a new pair of files, not new code. See fixtures/README.md.
 */
export const tensorEntrySchema = z.object({
  offset: z.number().int().min(0), // in bytes, multiple of 8
  shape: z.array(z.number().int().min(0)),
}).strict();
export type TensorEntry = z.infer<typeof tensorEntrySchema>;

const tensorGroup = z.record(z.string(), tensorEntrySchema);

export const cnnFixtureSchema = z.object({
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
  binFile: z.string(),
  binBytes: z.number().int().min(0),
  tensors: z.object({
    input: tensorEntrySchema,
    labels: tensorEntrySchema,
    parameters: tensorGroup, // before the first step
    blocks: tensorGroup, // train-mode forward of step 1
    gradients: tensorGroup, // step 1
    buffersAfterStep1: tensorGroup,
    parametersAfterStep2: tensorGroup,
    buffersAfterStep2: tensorGroup,
    evalLogProbs: tensorEntrySchema, // eval-mode forward after step 2
  }).strict(),
}).strict();
export type CnnFixture = z.infer<typeof cnnFixtureSchema>;
