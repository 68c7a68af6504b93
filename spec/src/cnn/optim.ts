import { z } from "zod";
import { finiteNumber } from "../numbers.ts";

/**
 * SGD with momentum and weight decay, PyTorch semantics (dampening 0, no Nesterov):
 *   g ← grad + weightDecay·p;  buf ← g on the first step, else momentum·buf + g;  p ← p − lr·buf.
 * BatchNorm and bias parameters are decayed too, as torch.optim.SGD does by default.
 */
export interface SgdStep {
  readonly lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
}

export function sgdUpdate(p: Float64Array | Float32Array, grad: ArrayLike<number>, buf: Float64Array | Float32Array, first: boolean, s: SgdStep): void {
  for (let i = 0; i < p.length; i++) {
    const g = grad[i]! + s.weightDecay * p[i]!;
    const b = first ? g : s.momentum * buf[i]! + g;
    buf[i] = b;
    p[i] = p[i]! - s.lr * b;
  }
}

export const oneCycleSchema = z.object({
  kind: z.literal("onecycle"),
  maxLr: finiteNumber.refine((v) => v > 0, "maxLr must be > 0"),
  pctStart: finiteNumber.default(0.3),
  divFactor: finiteNumber.default(25),
  finalDivFactor: finiteNumber.default(1e4),
  cycleMomentum: z.boolean().default(true),
  baseMomentum: finiteNumber.default(0.85),
  maxMomentum: finiteNumber.default(0.95),
}).strict();
export const stepLrSchema = z.object({
  kind: z.literal("steplr"),
  lr: finiteNumber.refine((v) => v > 0, "lr must be > 0"),
  stepSize: z.number().int().min(1), // epochs
  gamma: finiteNumber.default(0.1),
}).strict();
export const scheduleSchema = z.discriminatedUnion("kind", [oneCycleSchema, stepLrSchema]);
export type Schedule = z.infer<typeof scheduleSchema>;

export const recipeSchema = z.object({
  batchSize: z.number().int().min(1).default(128),
  epochs: z.number().int().min(1).default(15),
  momentum: finiteNumber.default(0.9),
  weightDecay: finiteNumber.default(0),
  schedule: scheduleSchema.default({ kind: "onecycle", maxLr: 0.05 }),
}).strict();
export type Recipe = z.infer<typeof recipeSchema>;

/** The reference recipe: SGD momentum 0.9, OneCycle max_lr 0.05, batch 128. */
export const REFERENCE_RECIPE: Recipe = recipeSchema.parse({});

const cosAnneal = (start: number, end: number, pct: number) => end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);

/** lr and momentum for optimizer step `step` (0-based) of `totalSteps`, as torch.optim.lr_scheduler computes them. */
export function scheduleAt(recipe: Recipe, step: number, totalSteps: number, stepsPerEpoch: number): SgdStep {
  const s = recipe.schedule;
  if (s.kind === "steplr") {
    const epoch = Math.floor(step / stepsPerEpoch);
    return { lr: s.lr * s.gamma ** Math.floor(epoch / s.stepSize), momentum: recipe.momentum, weightDecay: recipe.weightDecay };
  }
  const initial = s.maxLr / s.divFactor;
  const min = initial / s.finalDivFactor;
  const end1 = s.pctStart * totalSteps - 1;
  const end2 = totalSteps - 1;
  let lr: number, momentum: number;
  if (step <= end1) {
    const pct = step / end1;
    lr = cosAnneal(initial, s.maxLr, pct);
    momentum = cosAnneal(s.maxMomentum, s.baseMomentum, pct);
  } else {
    const pct = (step - end1) / (end2 - end1);
    lr = cosAnneal(s.maxLr, min, pct);
    momentum = cosAnneal(s.baseMomentum, s.maxMomentum, pct);
  }
  return { lr, momentum: s.cycleMomentum ? momentum : recipe.momentum, weightDecay: recipe.weightDecay };
}
