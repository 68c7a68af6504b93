import { readFile } from "node:fs/promises";
import { z } from "zod";
import {
  LR_MAX,
  STEPS_MAX,
  learningRateSchema,
  net222ConfigSchema,
  parseWith,
  stepsSchema,
  type Net222Config,
} from "@nnspec/spec";
import { UsageError } from "@nnspec/conformance";

/**
 * Command-line arguments of `nnspec sweep`, validated with zod. Option values arrive as strings; the number
 * syntax is checked with a regex first because Number() accepts "", " ", "0x10" and "Infinity".
 */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

const lrValue = z
  .string()
  .trim()
  .refine((s) => DECIMAL.test(s), { message: "is not a number" })
  .transform(Number)
  .pipe(learningRateSchema);

const lrList = z
  .string()
  .transform((s) => s.split(","))
  .pipe(z.array(lrValue))
  .refine((l) => new Set(l).size === l.length, { message: "lists a learning rate twice" });

const stepsValue = z
  .string()
  .trim()
  .refine((s) => /^\d+$/.test(s), { message: "is not a whole number" })
  .transform(Number)
  .pipe(stepsSchema);

export const sweepCliSchema = z.object({
  lr: lrList.optional(),
  steps: stepsValue.optional(),
  config: z.string().min(1, "is empty").optional(),
  backend: z.string().min(1, "is empty").default("reference"),
  out: z.string().min(1, "is empty").optional(),
  force: z.boolean().optional(),
});
export type SweepCliOptions = z.output<typeof sweepCliSchema>;

const HINTS: Record<string, string> = {
  lr: `comma-separated learning rates, each > 0 and ≤ ${LR_MAX}, e.g. --lr 0.1,0.5`,
  steps: `a whole number from 0 to ${STEPS_MAX}`,
};

/** Validate raw commander options; a bad value → UsageError naming the option, the value and the rule. */
export function parseSweepCli(raw: Record<string, unknown>): SweepCliOptions {
  const result = sweepCliSchema.safeParse(raw);
  if (result.success) return result.data;
  const messages = result.error.issues.map((issue) => {
    const option = String(issue.path[0]);
    const value = raw[option];
    // For a list, name the one item that is wrong rather than the whole list.
    const item =
      typeof issue.path[1] === "number" && typeof value === "string" ? value.split(",")[issue.path[1]]?.trim() : value;
    // The range messages already state the rule; the hint helps where only the syntax was wrong.
    const hint = HINTS[option] && !issue.message.includes("must be") ? ` (expected ${HINTS[option]})` : "";
    return `option --${option} ${JSON.stringify(item)}: ${issue.message}${hint}`;
  });
  throw new UsageError(messages.join("\n"));
}

/** Read a 2-2-2 config file: unreadable or invalid JSON → UsageError naming the file; bad fields → SpecValidationError. */
export async function readConfigFile(path: string): Promise<Net222Config> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new UsageError(
      `${path}: cannot read config file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path}: invalid JSON (${(err as Error).message})`);
  }
  return parseWith(net222ConfigSchema, data, path);
}
