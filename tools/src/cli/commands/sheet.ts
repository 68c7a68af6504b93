import type { Command } from "commander";
import pc from "picocolors";
import { z } from "zod";
import { CLASS_LEARNING_RATES, learningRateSchema, parseWith } from "@nnspec/spec";
import {
  EXPORT_DEFAULT_STEPS,
  EXPORT_STEPS_MAX,
  auditWorkbook,
  exportWorkbook,
  formatAuditReport,
} from "@nnspec/fixtures/excel";
import { EXIT, UsageError } from "@nnspec/conformance";
import { readConfigFile } from "../../sweep/cli-options.ts";

/**
 * `nnspec sheet <subcommand>`: work with class Excel workbooks of the 2-2-2 network.
 *   audit <file.xlsx>  replay every row with the spec formulas and say which columns Excel got right.
 *   export <out.xlsx> write the task as a live workbook: one sheet per learning rate, spec formulas with cached values.
 */
const auditOptionsSchema = z.object({
  lr: z
    .string()
    .regex(/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i, "expected a number, e.g. 0.5")
    .transform(Number)
    .pipe(learningRateSchema)
    .optional(),
  json: z.boolean().optional(),
});

// Number() accepts "", "0x10" and "Infinity": check the decimal syntax first.
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

const exportOptionsSchema = z.object({
  lr: z
    .string()
    .transform((s) => s.split(",").map((x) => x.trim()))
    .pipe(z.array(z.string().regex(DECIMAL, "is not a number").transform(Number).pipe(learningRateSchema)))
    .refine((l) => new Set(l).size === l.length, { message: "lists a learning rate twice" })
    .optional(),
  steps: z
    .string()
    .trim()
    .regex(/^\d+$/, "is not a whole number")
    .transform(Number)
    .pipe(z.number().max(EXPORT_STEPS_MAX, `must be ≤ ${EXPORT_STEPS_MAX} (one spreadsheet row per step)`))
    .optional(),
  config: z.string().min(1, "is empty").optional(),
  out: z.string().regex(/\.xlsx$/i, "must name an .xlsx file"),
});

/** zod issues → one UsageError line per bad option, naming the option (or the list item) and the value. */
function parseExportCli(raw: Record<string, unknown>): z.output<typeof exportOptionsSchema> {
  const r = exportOptionsSchema.safeParse(raw);
  if (r.success) return r.data;
  throw new UsageError(
    r.error.issues
      .map((issue) => {
        const key = String(issue.path[0]);
        const value = raw[key];
        const item =
          typeof issue.path[1] === "number" && typeof value === "string"
            ? value.split(",")[issue.path[1]]?.trim()
            : value;
        return `${key === "out" ? "argument <out.xlsx>" : `option --${key}`} ${JSON.stringify(item)}: ${issue.message}`;
      })
      .join("\n"),
  );
}

export function registerSheet(program: Command): void {
  const sheet = program.command("sheet").description("class Excel workbooks of the 2-2-2 network (audit, export)");

  sheet
    .command("audit")
    .description(
      "check every computed column of a 2-2-2 workbook against the spec formulas, columns found by header or by content (exit 1: inconsistent, 2: bad input, 3: incomplete — a quantity not found)",
    )
    .argument("<file>", ".xlsx workbook (cached values are read; nothing is recalculated)")
    .option("--lr <eta>", "learning rate for the update check (wins over an η/LR cell in the sheet)")
    .option("--json", "print the report as JSON")
    .action(async (file: string, raw: unknown) => {
      const o = parseWith(auditOptionsSchema, raw, "nnspec sheet audit options");
      const report = await auditWorkbook(file, o.lr === undefined ? {} : { lr: o.lr });
      console.log(
        o.json
          ? JSON.stringify(report, null, 2)
          : formatAuditReport(report, { ok: pc.green, bad: pc.red, dim: pc.dim, bold: pc.bold }),
      );
      // A wrong column is a fault found even when something else is missing; missing alone is "incomplete".
      const status = report.summary.status;
      process.exitCode = status === "inconsistent" ? EXIT.fault : status === "incomplete" ? EXIT.incomplete : EXIT.ok;
    });

  sheet
    .command("export")
    .description(
      "write the 2-2-2 task as a live .xlsx: one sheet per learning rate, every row spec formulas (weights = row above − η·∂E/∂w) with cached values",
    )
    .argument("<out>", "the .xlsx file to write (written to a temporary name, then renamed)")
    .option("--lr <list>", `comma-separated learning rates (default: ${CLASS_LEARNING_RATES.join(",")})`)
    .option(
      "--steps <n>",
      `training steps, one row each (default: ${EXPORT_DEFAULT_STEPS}, at most ${EXPORT_STEPS_MAX})`,
    )
    .option("--config <file>", "2-2-2 config JSON (inputs, targets, w1…w8, optional b1, b2); default: the class values")
    .action(async (out: string, raw: Record<string, unknown>) => {
      const o = parseExportCli({ ...raw, out });
      const config = o.config === undefined ? undefined : await readConfigFile(o.config);
      const r = await exportWorkbook(o.out, {
        ...(config ? { config } : {}),
        ...(o.lr ? { lrs: o.lr } : {}),
        ...(o.steps !== undefined ? { steps: o.steps } : {}),
      });
      console.log(
        `wrote ${r.file}: ${r.sheets.length} sheet(s), ${r.sheets[0]!.steps} steps each (config: ${o.config ?? "class values"})`,
      );
      for (const s of r.sheets)
        console.log(
          `  ${pc.bold(s.name.padEnd(10))} E_total ${s.firstError.toPrecision(6)} → ${s.lastError.toPrecision(6)}`,
        );
    });
}
