import type { Command } from "commander";
import { z } from "zod";
import { parseWith } from "@nnspec/spec";
import { generatorUnavailable } from "./cases.ts";
import { calibrationBackends, formatCalibration, runCalibration } from "./run.ts";

const seed = z.coerce
  .number()
  .int()
  .min(1)
  .max(2 ** 31);
const optionsSchema = z
  .object({
    cases: z.coerce.number().int().min(1).max(1000).default(3),
    seed: seed.optional(),
    seeds: z
      .string()
      .regex(/^\d+(,\d+)*$/, "comma-separated case seeds")
      .optional(),
    backends: z.string().optional(),
    keep: z.string().optional(),
  })
  .strict();

export function registerCalibrate(program: Command): void {
  program
    .command("calibrate")
    .description(
      "judge the judge on fresh CNN goldens (PyTorch, seeds drawn now): every correct backend must pass; prints false alarms per check group, exit 1 on any",
    )
    .option("--cases <n>", "number of fresh cases (default 3)")
    .option("--seed <n>", "base seed of the case seeds (default: drawn at run time, printed)")
    .option("--seeds <a,b,…>", "exactly these case seeds (each printed case line names its seed)")
    .option(
      "--backends <labels>",
      `only these runs: ${calibrationBackends()
        .map((b) => b.label)
        .join(", ")}`,
    )
    .option("--keep <dir>", "write the cases here and keep them (default: a temporary folder, removed)")
    .action(async (raw: unknown) => {
      const o = parseWith(optionsSchema, raw, "nnspec calibrate options");
      const why = await generatorUnavailable();
      if (why) throw new Error(`calibrate needs the PyTorch generator: ${why}`);
      const wanted = o.backends
        ?.split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      const all = calibrationBackends();
      const unknown = wanted?.filter((w) => !all.some((b) => b.label === w)) ?? [];
      if (unknown.length)
        throw new Error(`unknown backend run(s): ${unknown.join(", ")} (have: ${all.map((b) => b.label).join(", ")})`);
      const result = await runCalibration({
        cases: o.cases,
        ...(o.seed !== undefined ? { baseSeed: o.seed } : {}),
        ...(o.seeds ? { seeds: o.seeds.split(",").map(Number) } : {}),
        ...(wanted ? { backends: all.filter((b) => wanted.includes(b.label)) } : {}),
        ...(o.keep ? { keepDir: o.keep } : {}),
      });
      console.log(`\n${formatCalibration(result)}`);
      if (result.falseAlarms.length > 0) process.exitCode = 1;
    });
}
