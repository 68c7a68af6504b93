import type { Command } from "commander";
import { z } from "zod";
import { parseWith } from "@nnspec/spec";
import { MUTANT_CORPUS, runMutants, type MutantsRun } from "./run.ts";
import { LEGEND, formatKillMatrix, formatProgress, formatSummary } from "./format.ts";
import type { MutantPrecision } from "./cnn.ts";

const optionsSchema = z
  .object({
    precision: z.enum(["float32", "float64"]).optional(),
    only: z.string().optional(),
  })
  .strict();

export function registerMutants(program: Command): void {
  program
    .command("mutants")
    .description(
      "judge the judge: the full suite against a corpus of wrong backends (one realistic bug each); prints the kill matrix, exit 1 if any survives",
    )
    .option("--precision <p>", "float32 or float64 (default: both)")
    .option(
      "--only <ids>",
      `comma-separated mutant ids (controls always run): ${MUTANT_CORPUS.filter((m) => !m.control)
        .map((m) => m.id)
        .join(", ")}`,
    )
    .action(async (raw: unknown) => {
      const o = parseWith(optionsSchema, raw, "nnspec mutants options");
      const only = o.only
        ?.split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      const unknown = only?.filter((id) => !MUTANT_CORPUS.some((m) => m.id === id)) ?? [];
      if (unknown.length) throw new Error(`unknown mutant(s): ${unknown.join(", ")}`);
      const precisions: MutantPrecision[] = o.precision ? [o.precision] : ["float32", "float64"];
      const runs: MutantsRun[] = [];
      for (const precision of precisions) {
        console.log(`== mutants at ${precision}`);
        runs.push(
          await runMutants({ precision, ...(only ? { only } : {}), onResult: (r) => console.log(formatProgress(r)) }),
        );
      }
      for (const run of runs) console.log(`\n${formatKillMatrix(run)}`);
      console.log(`\n${LEGEND}`);
      for (const run of runs) console.log(formatSummary(run));
      if (runs.some((r) => r.survivors.length > 0 || r.falseAlarms.length > 0)) process.exitCode = 1;
    });
}
