import { z } from "zod";
import { finiteNumber } from "../numbers.ts";

export const WEIGHT_NAMES = ["w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"] as const;
export type WeightName = (typeof WEIGHT_NAMES)[number];
/** The weights of each layer (input → hidden, hidden → output): gradients are judged per layer (tolerance.ts). */
export const NET222_LAYERS: Readonly<Record<"hidden" | "output", readonly WeightName[]>> = {
  hidden: ["w1", "w2", "w3", "w4"],
  output: ["w5", "w6", "w7", "w8"],
};
export const FORWARD_NAMES = ["h1", "a_h1", "h2", "a_h2", "o1", "a_o1", "o2", "a_o2", "E1", "E2", "E_total"] as const;
export type ForwardName = (typeof FORWARD_NAMES)[number];

/** Largest learning rate the suite accepts; beyond it the sigmoid network only saturates. */
export const LR_MAX = 100;
export const STEPS_MAX = 1_000_000;

export const weightsSchema = z
  .object(Object.fromEntries(WEIGHT_NAMES.map((w) => [w, finiteNumber])) as Record<WeightName, typeof finiteNumber>)
  .strict();
export type Weights = z.infer<typeof weightsSchema>;

/** A 2-2-2 problem: inputs, targets, initial weights and the fixed (never trained) biases b1, b2. */
export const net222ConfigSchema = z
  .object({
    i1: finiteNumber,
    i2: finiteNumber,
    t1: finiteNumber,
    t2: finiteNumber,
    ...weightsSchema.shape,
    b1: finiteNumber.default(0),
    b2: finiteNumber.default(0),
  })
  .strict();
export type Net222Config = z.infer<typeof net222ConfigSchema>;
export type Net222ConfigInput = z.input<typeof net222ConfigSchema>;

export const learningRateSchema = finiteNumber.refine((v) => v > 0 && v <= LR_MAX, {
  message: `learning rate out of range (must be > 0 and ≤ ${LR_MAX})`,
});
export const stepsSchema = z.number().int("steps must be an integer").min(0).max(STEPS_MAX);

/** The class values: the default configuration of the Excel task. */
export const CLASS_CONFIG: Net222Config = {
  i1: 0.05,
  i2: 0.1,
  t1: 0.5,
  t2: 0.5,
  w1: 0.15,
  w2: 0.2,
  w3: 0.25,
  w4: 0.3,
  w5: 0.4,
  w6: 0.45,
  w7: 0.5,
  w8: 0.55,
  b1: 0,
  b2: 0,
};
export const CLASS_LEARNING_RATES = [0.1, 0.2, 0.5, 0.8, 1.0, 2.0] as const;

export function weightsOf(c: Weights): Weights {
  return { w1: c.w1, w2: c.w2, w3: c.w3, w4: c.w4, w5: c.w5, w6: c.w6, w7: c.w7, w8: c.w8 };
}
