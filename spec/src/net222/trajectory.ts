import { z } from "zod";
import { finiteNumber } from "../numbers.ts";
import { FORWARD_NAMES, WEIGHT_NAMES, net222ConfigSchema, weightsSchema, type ForwardName } from "./config.ts";
import { precisionSchema } from "../tolerance.ts";

const forwardSchema = z
  .object(Object.fromEntries(FORWARD_NAMES.map((k) => [k, z.number()])) as Record<ForwardName, z.ZodNumber>)
  .strict();
const gradientsSchema = z
  .object(
    Object.fromEntries(WEIGHT_NAMES.map((k) => [k, z.number()])) as Record<(typeof WEIGHT_NAMES)[number], z.ZodNumber>,
  )
  .strict();

/** Everything about one step k: the weights it starts from, the forward pass and the gradients at them. */
export const stepRecordSchema = z
  .object({ step: z.number().int().min(0), weights: weightsSchema, forward: forwardSchema, gradients: gradientsSchema })
  .strict();
export type StepRecord = z.infer<typeof stepRecordSchema>;

/** A golden trajectory file: fixtures/net222/lr-<η>.json. */
export const net222FixtureSchema = z
  .object({
    kind: z.literal("net222.trajectory"),
    formatVersion: z.literal(1),
    description: z.string(),
    generator: z.string(),
    precision: precisionSchema,
    config: net222ConfigSchema,
    lr: finiteNumber,
    steps: z.number().int().min(1),
    records: z.array(stepRecordSchema).min(1),
  })
  .strict()
  .superRefine((f, ctx) => {
    if (f.records.length !== f.steps + 1)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["records"],
        message: `expected steps + 1 = ${f.steps + 1} records, found ${f.records.length}`,
      });
    f.records.forEach((r, i) => {
      if (r.step !== i)
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["records", i, "step"],
          message: `expected step ${i}, found ${r.step}`,
        });
    });
  });
export type Net222Fixture = z.infer<typeof net222FixtureSchema>;
