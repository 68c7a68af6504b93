import { z } from "zod";
import { UsageError } from "@nnspec/conformance";
import { AUGMENTATION_KINDS, dropoutRatesProblems } from "@nnspec/spec";

/** CLI values arrive as strings; these turn them into numbers with a message that says what was expected. */
export const cliInt = (min: number) =>
  z
    .string()
    .trim()
    .regex(/^-?[0-9]+$/, `expected an integer${min > 0 ? ` ≥ ${min}` : ""}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `must be ≥ ${min}`).max(Number.MAX_SAFE_INTEGER, "is too large"));
export const cliPositiveNumber = z
  .string()
  .trim()
  .refine((s) => s !== "" && Number.isFinite(Number(s)), "expected a number")
  .transform(Number)
  .pipe(z.number().positive("must be > 0"));

/** `nnspec train` options (commander's camelCase keys). Upper bounds are the MNIST set sizes (a bigger batch is a typo). */
export const trainCliSchema = z
  .object({
    backend: z.string().min(1, "must not be empty"),
    precision: z.enum(["float32", "float64"]),
    epochs: cliInt(1),
    batch: cliInt(1).pipe(z.number().max(60000, "must be ≤ 60000 (the MNIST training set)")),
    seed: cliInt(0).pipe(z.number().max(0xffffffff, "must fit in 32 bits")),
    limit: cliInt(1).pipe(z.number().max(60000, "must be ≤ 60000 (the MNIST training set)")).optional(),
    testLimit: cliInt(1).pipe(z.number().max(10000, "must be ≤ 10000 (the MNIST test set)")).optional(),
    threads: cliInt(1).pipe(z.number().max(64, "must be ≤ 64")).optional(),
    evalBatch: cliInt(1).pipe(z.number().max(10000, "must be ≤ 10000 (the MNIST test set)")),
    maxLr: cliPositiveNumber,
    /** A named recipe (spec RECIPES) or a recipe .json; options typed on the command line override its settings. */
    recipe: z.string().min(1).optional(),
    augment: z.enum(AUGMENTATION_KINDS).optional(),
    weightDecay: z
      .string()
      .trim()
      .refine((s) => s !== "" && Number.isFinite(Number(s)), "expected a number")
      .transform(Number)
      .pipe(z.number().min(0, "must be ≥ 0"))
      .optional(),
    /** "0.1,0.1,0.05": one drop probability per dropout layer. */
    dropout: z
      .string()
      .trim()
      .transform((s) => s.split(",").map((v) => (v.trim() === "" ? Number.NaN : Number(v))))
      .superRefine((rates, ctx) => {
        const problems = dropoutRatesProblems(rates);
        if (problems.length) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problems.join("; ") });
      })
      .optional(),
    dataDir: z.string().min(1).optional(),
    out: z.string().min(1).optional(),
    checkpoint: z
      .string()
      .min(1)
      .regex(/\.json$/i, "must name a .json manifest")
      .optional(),
    resume: z.string().min(1).optional(),
    restartMomentum: z.boolean(),
    allowBackendSwitch: z.boolean(),
    force: z.boolean(),
    logEvery: cliInt(1),
  })
  .strict();
export type TrainCliOptions = z.infer<typeof trainCliSchema>;

const flagOf = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Parse commander's options with `schema`; a failure names the offending option(s) as typed on the command line. */
export function parseCliOptions<T>(
  schema: z.ZodType<T, z.ZodTypeDef, unknown>,
  raw: Record<string, unknown>,
  command: string,
): T {
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => {
    const key = String(i.path[0] ?? "");
    const given = key in raw ? ` (got ${JSON.stringify(raw[key])})` : "";
    return i.code === "unrecognized_keys"
      ? `unknown option(s) ${i.keys.map(flagOf).join(", ")}`
      : `option ${flagOf(key)}: ${i.message}${given}`;
  });
  throw new UsageError(`nnspec ${command}: ${lines.join("; ")}`);
}
