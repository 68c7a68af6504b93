import type { Command } from "commander";
import { resolve } from "node:path";
import { z } from "zod";
import { parseWith, precisionSchema } from "@nnspec/spec";
import { runConformance } from "../../conformance-run.ts";
import type { LoadOptions } from "../../load-backend.ts";

/** What a CLI that embeds this command may add: short backend names, and the runs `--all` stands for. */
export interface ConformanceCommandOptions extends LoadOptions {
  readonly allRuns?: ReadonlyArray<{ readonly backend: string; readonly options: Record<string, unknown> }>;
}

const optionsSchema = z.object({
  backend: z.string().min(1).optional(),
  all: z.boolean().optional(),
  precision: precisionSchema.optional(),
  fixture: z.array(z.string()).optional(),
  onlyFixtures: z.boolean().optional(),
  report: z.string().optional(),
  workbook: z.array(z.string()).optional(),
});

export function registerConformance(program: Command, c: ConformanceCommandOptions = {}): void {
  const cmd = program
    .command("conformance")
    .description("run the conformance suite against a backend and print every check (pass / FAIL / not implemented)")
    .option("-b, --backend <spec>", `backend: npm package name or path${c.aliases ? ` (or a short name: ${Object.keys(c.aliases).join(", ")})` : ""}`);
  if (c.allRuns) cmd.option("--all", "every backend configuration in the workspace");
  cmd
    .option("--precision <p>", "ask the backend for this precision (float64 | float32), if it offers several")
    .option("--fixture <file...>", "extra golden file(s) to check (any kind: 2-2-2 trajectory or CNN case)")
    .option("--only-fixtures", "check only the --fixture files, not the committed goldens")
    .option("--workbook <file.xlsx...>", "class workbook(s): audited columns become extra 2-2-2 checks (default: $NNSPEC_WORKBOOK; needs exceljs)")
    .option("--report <file>", "write the JSON report here (with --all: one file per run, suffixed)")
    .action(async (raw: unknown) => {
      const o = parseWith(optionsSchema.refine((v) => v.backend !== undefined || v.all, {
        message: c.allRuns ? "give --backend <name|package|path> or --all" : "give --backend <package|path>", path: ["backend"],
      }), raw, "nnspec conformance options");
      const fixtures = (o.fixture ?? []).map((f) => resolve(f));
      const runs = o.all && c.allRuns ? c.allRuns : [{ backend: o.backend!, options: o.precision ? { precision: o.precision } : {} }];
      let failed = 0;
      for (const [i, run] of runs.entries()) {
        const reportPath = o.report && runs.length > 1 ? o.report.replace(/(\.json)?$/, `-${i + 1}.json`) : o.report;
        const report = await runConformance({
          backend: run.backend, backendOptions: run.options, reportPath, ...(c.aliases ? { aliases: c.aliases } : {}),
          ...(o.workbook ? { workbooks: o.workbook.map((w) => resolve(w)) } : {}),
          ...(o.onlyFixtures ? { onlyFixtures: fixtures } : { extraFixtures: fixtures }),
        });
        failed += report.summary.failed;
        console.log("");
      }
      if (failed > 0) process.exitCode = 1;
    });
}
