import { readFile } from "node:fs/promises";
import { z } from "zod";
import {
  AUGMENTATION_KINDS,
  RECIPES,
  REFERENCE_RECIPE,
  augmentationOf,
  augmentationSchema,
  dropoutRatesOf,
  recipeSchema,
  recipeSettings,
  type AugmentationKind,
  type Recipe,
} from "@nnspec/spec";
import { UsageError } from "@nnspec/conformance";

/**
 * `--recipe <name|file.json>` and the options that change one setting of it (--epochs, --batch, --max-lr,
 * --weight-decay, --augment, --dropout). Only options typed on the command line override the recipe: their defaults are the
 * reference recipe's values and must not undo a named recipe's.
 */

export const augmentKindSchema = z.enum(AUGMENTATION_KINDS);

/** A named recipe (spec RECIPES) or a JSON file holding one (validated with recipeSchema; one-line errors). */
export async function resolveRecipe(spec: string): Promise<Recipe> {
  const named = RECIPES[spec];
  if (named) return named;
  if (!/\.json$/i.test(spec))
    throw new UsageError(`--recipe ${spec}: not a named recipe (${Object.keys(RECIPES).join(", ")}) nor a .json file`);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(spec, "utf8"));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(`--recipe ${spec}: ${e.code === "ENOENT" ? "no such file" : e.message}`);
  }
  const r = recipeSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new UsageError(`--recipe ${spec}: field ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  return r.data;
}

export interface RecipeOverrides {
  readonly epochs?: number;
  readonly batchSize?: number;
  readonly maxLr?: number;
  readonly weightDecay?: number;
  readonly augment?: AugmentationKind;
  readonly dropout?: readonly number[];
}

/**
 * `base` with the overrides applied. A changed recipe keeps a name that says so ("reference +augment=affine"), so a
 * run record never claims a named recipe it did not use.
 */
export function applyOverrides(base: Recipe, o: RecipeOverrides): Recipe {
  const changes: string[] = [];
  let r: Recipe = { ...base };
  if (o.epochs !== undefined && o.epochs !== r.epochs) {
    r = { ...r, epochs: o.epochs };
    changes.push(`epochs=${o.epochs}`);
  }
  if (o.batchSize !== undefined && o.batchSize !== r.batchSize) {
    r = { ...r, batchSize: o.batchSize };
    changes.push(`batch=${o.batchSize}`);
  }
  if (o.weightDecay !== undefined && o.weightDecay !== r.weightDecay) {
    r = { ...r, weightDecay: o.weightDecay };
    changes.push(`weight-decay=${o.weightDecay}`);
  }
  if (o.maxLr !== undefined) {
    if (r.schedule.kind !== "onecycle")
      throw new UsageError(
        `--max-lr applies to a onecycle schedule; recipe ${base.name ?? "(unnamed)"} uses ${r.schedule.kind}`,
      );
    if (o.maxLr !== r.schedule.maxLr) {
      r = { ...r, schedule: { ...r.schedule, maxLr: o.maxLr } };
      changes.push(`max-lr=${o.maxLr}`);
    }
  }
  if (o.augment !== undefined && o.augment !== augmentationOf(r).kind) {
    // A different kind starts from that kind's default strengths (spec augmentationSchema).
    r = { ...r, augmentation: augmentationSchema.parse({ kind: o.augment }) };
    changes.push(`augment=${o.augment}`);
  }
  if (o.dropout !== undefined && o.dropout.join() !== dropoutRatesOf(r).join()) {
    r = { ...r, dropout: [...o.dropout] };
    changes.push(`dropout=${o.dropout.join(",")}`);
  }
  if (changes.length === 0) return r;
  const name = `${base.name ?? "custom"} +${changes.join(" +")}`;
  return recipeSchema.parse({ ...r, name });
}

/** The train options that make the recipe (TrainCliOptions' keys). */
export interface RecipeCliOptions {
  readonly recipe?: string | undefined;
  readonly epochs: number;
  readonly batch: number;
  readonly maxLr: number;
  readonly weightDecay?: number | undefined;
  readonly augment?: AugmentationKind | undefined;
  readonly dropout?: readonly number[] | undefined;
}

/**
 * The recipe `nnspec train` runs: --recipe (default "reference") with every recipe option typed on the command line
 * applied. `fromCli(key)` says whether an option was typed (commander's getOptionValueSource(key) === "cli").
 */
export async function recipeFromCli(
  o: RecipeCliOptions,
  fromCli: (key: string) => boolean,
  base?: Recipe,
): Promise<Recipe> {
  const start = base ?? (o.recipe ? await resolveRecipe(o.recipe) : REFERENCE_RECIPE);
  const typed = <T>(key: string, v: T | undefined): T | undefined => (fromCli(key) ? v : undefined);
  const overrides: RecipeOverrides = {
    ...(typed("epochs", o.epochs) !== undefined ? { epochs: o.epochs } : {}),
    ...(typed("batch", o.batch) !== undefined ? { batchSize: o.batch } : {}),
    ...(typed("maxLr", o.maxLr) !== undefined ? { maxLr: o.maxLr } : {}),
    ...(o.weightDecay !== undefined && fromCli("weightDecay") ? { weightDecay: o.weightDecay } : {}),
    ...(o.augment !== undefined && fromCli("augment") ? { augment: o.augment } : {}),
    ...(o.dropout !== undefined && fromCli("dropout") ? { dropout: o.dropout } : {}),
  };
  return applyOverrides(start, overrides);
}

/**
 * On --resume the checkpoint's recipe defines the run: --recipe, --augment, --weight-decay or --dropout typed with a different
 * value is refused (one line; --epochs/--batch/--max-lr are checked with the other resume settings).
 */
export async function recipeResumeConflict(
  saved: Recipe,
  o: RecipeCliOptions,
  fromCli: (key: string) => boolean,
): Promise<string | null> {
  const checked = ["augment", "weightDecay", "dropout"];
  if (!["recipe", ...checked].some(fromCli)) return null;
  const wanted =
    o.recipe && fromCli("recipe")
      ? await recipeFromCli(o, (k) => fromCli(k) && checked.includes(k))
      : await recipeFromCli(o, (k) => fromCli(k) && checked.includes(k), saved);
  if (recipeSettings(saved) === recipeSettings(wanted)) return null;
  return `the recipe asked for (${wanted.name ?? "unnamed"}: ${recipeSettings(wanted)}) differs from the checkpoint's (${saved.name ?? "unnamed"}: ${recipeSettings(saved)}); a resumed run keeps its recipe`;
}
