import { z } from "zod";
import { finiteNumber } from "../numbers.ts";
import { DEFAULT_DROPOUT_RATES, dropoutRatesProblems } from "./architecture.ts";

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

export function sgdUpdate(
  p: Float64Array | Float32Array,
  grad: ArrayLike<number>,
  buf: Float64Array | Float32Array,
  first: boolean,
  s: SgdStep,
): void {
  for (let i = 0; i < p.length; i++) {
    const g = grad[i]! + s.weightDecay * p[i]!;
    const b = first ? g : s.momentum * buf[i]! + g;
    buf[i] = b;
    p[i] = p[i]! - s.lr * b;
  }
}

export const oneCycleSchema = z
  .object({
    kind: z.literal("onecycle"),
    maxLr: finiteNumber.refine((v) => v > 0, "maxLr must be > 0"),
    pctStart: finiteNumber.default(0.3),
    divFactor: finiteNumber.default(25),
    finalDivFactor: finiteNumber.default(1e4),
    cycleMomentum: z.boolean().default(true),
    baseMomentum: finiteNumber.default(0.85),
    maxMomentum: finiteNumber.default(0.95),
  })
  .strict();
export const stepLrSchema = z
  .object({
    kind: z.literal("steplr"),
    lr: finiteNumber.refine((v) => v > 0, "lr must be > 0"),
    stepSize: z.number().int().min(1), // epochs
    gamma: finiteNumber.default(0.1),
  })
  .strict();
export const scheduleSchema = z.discriminatedUnion("kind", [oneCycleSchema, stepLrSchema]);
export type Schedule = z.infer<typeof scheduleSchema>;

const degrees = finiteNumber.refine((v) => v >= 0 && v <= 180, "must be in 0..180 degrees");
const pixels = finiteNumber.refine((v) => v >= 0 && v <= 14, "must be in 0..14 pixels");
/**
 * Training-data augmentation, applied to each training image before the spec's normalisation (the test set is
 * never augmented). Each parameter is drawn uniformly from [−max, +max] per image and epoch from the run seed
 * (tools/src/data/augment.ts holds the rule and the bilinear warp), so every backend gets identical batches.
 * - rotate: rotation about the image centre by up to ±maxDegrees.
 * - affine: rotation ±maxDegrees, translation ±maxShift pixels in x and y, and scale 1 ± maxScale.
 */
export const augmentationSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("none") }).strict(),
  z.object({ kind: z.literal("rotate"), maxDegrees: degrees.default(7) }).strict(),
  z
    .object({
      kind: z.literal("affine"),
      maxDegrees: degrees.default(7),
      maxShift: pixels.default(2),
      maxScale: finiteNumber.refine((v) => v >= 0 && v < 1, "must be in 0..1 (exclusive)").default(0),
    })
    .strict(),
]);
export type Augmentation = z.infer<typeof augmentationSchema>;
export const AUGMENTATION_KINDS = ["none", "rotate", "affine"] as const;
export type AugmentationKind = (typeof AUGMENTATION_KINDS)[number];
export const NO_AUGMENTATION: Augmentation = { kind: "none" };

/**
 * A training recipe as data: the optimizer is SGD with momentum (PyTorch semantics, sgdUpdate above), with
 * weight decay, an lr schedule stepped per batch, epochs, batch size and augmentation.
 * `name` and `augmentation` are optional so that records written before they existed still parse: no name is an
 * unnamed recipe ("custom" unless its settings equal a named one, recipeName), no augmentation is "none".
 */
export const recipeSchema = z
  .object({
    name: z.string().min(1).optional(),
    batchSize: z.number().int().min(1).default(128),
    epochs: z.number().int().min(1).default(15),
    momentum: finiteNumber.default(0.9),
    weightDecay: finiteNumber.refine((v) => v >= 0, "must be ≥ 0").default(0),
    schedule: scheduleSchema.default({ kind: "onecycle", maxLr: 0.05 }),
    augmentation: augmentationSchema.optional(),
    /**
     * Drop probability of each dropout layer (DROPOUT_LAYERS order), passed with every training forward
     * (CnnForwardOptions.dropout.rates). Absent = the architecture's rates (DEFAULT_DROPOUT_RATES).
     */
    dropout: z
      .array(finiteNumber)
      .superRefine((r, ctx) => {
        for (const message of dropoutRatesProblems(r)) ctx.addIssue({ code: z.ZodIssueCode.custom, message });
      })
      .optional(),
  })
  .strict();
export type Recipe = z.infer<typeof recipeSchema>;

/** The reference recipe: SGD momentum 0.9, OneCycle max_lr 0.05, batch 128, 15 epochs, no weight decay or augmentation. */
export const REFERENCE_RECIPE: Recipe = recipeSchema.parse({ name: "reference" });

/**
 * Named recipes (`nnspec train --recipe <name>`). "reference" is the recipe of every run before augmentation
 * existed; the others add augmentation to it or change its dropout rates. docs/recipe-search.md records what each reached.
 */
export const RECIPES: Readonly<Record<string, Recipe>> = {
  reference: REFERENCE_RECIPE,
  "reference-rotate": recipeSchema.parse({ name: "reference-rotate", augmentation: { kind: "rotate", maxDegrees: 7 } }),
  "reference-affine": recipeSchema.parse({
    name: "reference-affine",
    augmentation: { kind: "affine", maxDegrees: 7, maxShift: 2 },
  }),
  // The architecture's dropout (0.2, 0.2, 0.15) keeps training accuracy at the test accuracy in 15 epochs; halved.
  "half-dropout": recipeSchema.parse({ name: "half-dropout", dropout: [0.1, 0.1, 0.075] }),
};

/** The recipe's augmentation, "none" when absent. */
export const augmentationOf = (r: Recipe): Augmentation => r.augmentation ?? NO_AUGMENTATION;

/** The recipe's dropout rates, the architecture's when absent. */
export const dropoutRatesOf = (r: Recipe): readonly number[] => r.dropout ?? DEFAULT_DROPOUT_RATES;

/**
 * Settings of a recipe without its name, with defaults filled (absent augmentation = none, absent dropout = the
 * architecture's rates): for equality checks.
 */
export function recipeSettings(r: Recipe): string {
  const { name: _name, augmentation, dropout: _dropout, ...rest } = recipeSchema.parse(r);
  // Defaulted fields last, in a fixed order, so a record that spells a default out equals one that leaves it out.
  return JSON.stringify({
    ...rest,
    augmentation: augmentationSchema.parse(augmentation ?? NO_AUGMENTATION),
    dropout: dropoutRatesOf(r),
  });
}

/** What to call a recipe: its name, else the named recipe with the same settings, else "custom". */
export function recipeName(r: Recipe): string {
  if (r.name) return r.name;
  const s = recipeSettings(r);
  return Object.entries(RECIPES).find(([, named]) => recipeSettings(named) === s)?.[0] ?? "custom";
}

const cosAnneal = (start: number, end: number, pct: number) =>
  end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);

/** lr and momentum for optimizer step `step` (0-based) of `totalSteps`, as torch.optim.lr_scheduler computes them. */
export function scheduleAt(recipe: Recipe, step: number, totalSteps: number, stepsPerEpoch: number): SgdStep {
  const s = recipe.schedule;
  if (s.kind === "steplr") {
    const epoch = Math.floor(step / stepsPerEpoch);
    return {
      lr: s.lr * s.gamma ** Math.floor(epoch / s.stepSize),
      momentum: recipe.momentum,
      weightDecay: recipe.weightDecay,
    };
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
