import type { Command } from "commander";
import pc from "picocolors";
import { z } from "zod";
import { learningRateSchema, parseWith } from "@nnspec/spec";
import { auditWorkbook, formatAuditReport } from "@nnspec/fixtures";

/**
 * `nnspec sheet <subcommand>`: work with class Excel workbooks of the 2-2-2 network.
 *   audit <file.xlsx>  replay every row with the spec formulas and say which columns Excel got right.
 * (`sheet export` joins as a sibling subcommand.)
 */
const auditOptionsSchema = z.object({
  lr: z.string()
    .regex(/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i, "expected a number, e.g. 0.5")
    .transform(Number)
    .pipe(learningRateSchema)
    .optional(),
  json: z.boolean().optional(),
});

export function registerSheet(program: Command): void {
  const sheet = program
    .command("sheet")
    .description("class Excel workbooks of the 2-2-2 network (audit)");

  sheet
    .command("audit")
    .description("check every computed column of a 2-2-2 workbook against the spec formulas (exit 1: inconsistent, 2: bad input)")
    .argument("<file>", ".xlsx workbook (cached values are read; nothing is recalculated)")
    .option("--lr <eta>", "learning rate for the update check (wins over an η/LR cell in the sheet)")
    .option("--json", "print the report as JSON")
    .action(async (file: string, raw: unknown) => {
      const o = parseWith(auditOptionsSchema, raw, "nnspec sheet audit options");
      const report = await auditWorkbook(file, o.lr === undefined ? {} : { lr: o.lr });
      console.log(o.json ? JSON.stringify(report, null, 2) : formatAuditReport(report, { ok: pc.green, bad: pc.red, dim: pc.dim, bold: pc.bold }));
      if (!report.summary.consistent) process.exitCode = 1;
    });
}
