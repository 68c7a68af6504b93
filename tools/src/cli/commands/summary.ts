import type { Command } from "commander";
import pc from "picocolors";
import { formatSummary, initBuffers, initParameters, summaryTable, type SummaryRow } from "@nnspec/spec";
import { parseCliOptions } from "../../train/cli-options.ts";
import { requireCnn } from "../../train/train-cnn.ts";
import { loadCnnBackend } from "./train.ts";
import { z } from "zod";
import { EXIT } from "@nnspec/conformance";

/** Row-by-row differences between a backend's table and the spec's; empty when they match. */
export function compareSummary(actual: readonly SummaryRow[], expected: readonly SummaryRow[]): string[] {
  const problems: string[] = [];
  const shape = (s: readonly number[]) => `[-1, ${s.join(", ")}]`;
  for (let i = 0; i < Math.max(actual.length, expected.length); i++) {
    const a = actual[i];
    const e = expected[i];
    if (!a) {
      problems.push(`row ${i + 1}: missing (spec has ${e!.layer} ${shape(e!.outputShape)} ${e!.params})`);
      continue;
    }
    if (!e) {
      problems.push(`row ${i + 1}: extra row ${a.layer} ${shape(a.outputShape)} ${a.params}`);
      continue;
    }
    const diffs: string[] = [];
    if (a.layer !== e.layer) diffs.push(`layer ${a.layer} ≠ ${e.layer}`);
    if (shape(a.outputShape) !== shape(e.outputShape))
      diffs.push(`output ${shape(a.outputShape)} ≠ ${shape(e.outputShape)}`);
    if (a.params !== e.params) diffs.push(`params ${a.params} ≠ ${e.params}`);
    if (diffs.length > 0) problems.push(`row ${i + 1} (${e.layer}): ${diffs.join(", ")}`);
  }
  return problems;
}

const summaryCliSchema = z
  .object({ backend: z.string().min(1, "must not be empty"), precision: z.enum(["float32", "float64"]).optional() })
  .strict();

export function registerSummary(program: Command): void {
  program
    .command("summary")
    .description("Print a backend's CNN summary table and check it against the spec, row by row (exit 1 on mismatch)")
    .option("--backend <name>", "backend short name, package or path", "reference")
    .option("--precision <p>", "precision option passed to the backend (float32 | float64; default: the backend's)")
    .action(async (_raw: unknown, cmd: Command) => {
      const o = parseCliOptions(summaryCliSchema, cmd.opts(), "summary");
      const backend = await loadCnnBackend(o.backend, o.precision ? { precision: o.precision } : {});
      try {
        const model = await requireCnn(backend).create({ parameters: initParameters(1), buffers: initBuffers() });
        let rows: SummaryRow[];
        try {
          rows = await model.summary();
        } finally {
          await model.dispose();
        }
        const m = backend.manifest;
        console.log(`Backend ${m.name} ${m.version} (${m.precision}, ${m.device})\n`);
        console.log(formatSummary(rows));
        const problems = compareSummary(rows, summaryTable());
        if (problems.length === 0) {
          console.log(pc.green(`\n✓ matches the spec table (${rows.length} rows)`));
        } else {
          console.log(pc.red(`\n✗ differs from the spec table:\n${problems.map((p) => `  - ${p}`).join("\n")}`));
          console.log(`\nSpec table:\n${formatSummary(summaryTable())}`);
          process.exitCode = EXIT.fault;
        }
      } finally {
        await backend.dispose?.();
      }
    });
}
