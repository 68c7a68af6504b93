import { join, relative, resolve } from "node:path";
import type { Command } from "commander";
import pc from "picocolors";
import { z } from "zod";
import { EXIT } from "@nnspec/conformance";
import { compareMarkdown, loadRunRecords, runRow, writeCompareCharts } from "../../compare/index.ts";
import { writeFileAtomic } from "../../plot/atomic-write.ts";
import { parseCliOptions } from "../../train/cli-options.ts";

const compareCliSchema = z
  .object({
    out: z.string().min(1),
    series: z.enum(["runs", "groups", "auto"]),
    title: z.string().min(1).optional(),
  })
  .strict();

/**
 * `nnspec compare <run.json…>`: exit 0 when every run is complete; 2 when a file is missing or invalid (nothing is
 * written); 1 when a run diverged and 3 when one stopped early (interrupted, or fewer epochs than its recipe) —
 * the charts and tables are written in both cases, with those runs marked.
 */
export function registerCompare(program: Command): void {
  program
    .command("compare")
    .description(
      "Runs side by side: test error (log axis), test and train loss per epoch (PNG + SVG each), and a table per backend and recipe",
    )
    .argument("<runs...>", "run.json files written by nnspec train")
    .option("--out <dir>", "output folder for the charts and compare.md", join("out", "compare"))
    .option(
      "--series <mode>",
      "one curve per run (runs), per backend and recipe as the mean over its runs (groups), or runs while ≤ 10 (auto)",
      "auto",
    )
    .option("--title <text>", "prefix for the chart titles")
    .action(async (files: string[], _raw: unknown, cmd: Command) => {
      const o = parseCliOptions(compareCliSchema, cmd.opts(), "compare");
      const runs = await loadRunRecords(files);
      const rows = runs.map(runRow);
      const out = resolve(o.out);
      const charts = await writeCompareCharts(out, runs, o.series, o.title);
      const md = `${compareMarkdown(
        rows,
        charts.filter((c) => c.endsWith(".png")).map((c) => relative(out, c)),
      )}`;
      const mdPath = join(out, "compare.md");
      await writeFileAtomic(mdPath, md);
      console.log(md);
      console.log(`wrote ${[mdPath, ...charts].join("\n      ")}`);
      const diverged = rows.filter((r) => r.status === "diverged");
      const short = rows.filter((r) => r.status === "interrupted" || r.status === "short");
      if (diverged.length) {
        console.error(pc.red(`error: ${diverged.length} run(s) diverged: ${diverged.map((r) => r.path).join(", ")}`));
        process.exitCode = EXIT.fault;
      } else if (short.length) {
        console.error(
          pc.yellow(
            `incomplete: ${short.length} run(s) stopped before their last epoch: ${short.map((r) => `${r.path} (${r.epochs}/${r.plannedEpochs})`).join(", ")}`,
          ),
        );
        process.exitCode = EXIT.incomplete;
      }
    });
}
