import type { Command } from "commander";
import { resolve } from "node:path";
import { z } from "zod";
import { parseWith, precisionSchema } from "@nnspec/spec";
import { DEFAULT_CHECK_TIMEOUT_S, runConformance } from "../../conformance-run.ts";
import { EXIT, UsageError } from "../../errors.ts";
import { isCommandSpecifier } from "../../protocol/command-line.ts";
import { checkReportPath } from "../../report-file.ts";
import { handleInterrupts } from "../run-main.ts";
import type { LoadOptions } from "../../load-backend.ts";
import { DEFAULT_BROWSER_TIMEOUT_S, runConformanceInBrowser } from "../../browser-run/run.ts";
import type { ConformanceReport } from "../../report.ts";

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
  browser: z.boolean().optional(),
  chromium: z.string().min(1).optional(),
  browserTimeout: z.coerce.number().positive().finite().optional(),
  checkTimeout: z.coerce.number().positive().finite().optional(),
  inProcess: z.boolean().optional(),
});

export function registerConformance(program: Command, c: ConformanceCommandOptions = {}): void {
  const cmd = program
    .command("conformance")
    .description("run the conformance suite against a backend and print every check (pass / FAIL / not implemented)")
    .option(
      "-b, --backend <spec>",
      `backend: npm package name or path${c.aliases ? ` (or a short name: ${Object.keys(c.aliases).join(", ")})` : ""}, or "cmd:<command line>" for a program in any language speaking the pipe protocol (docs/backend-protocol.md)`,
    );
  if (c.allRuns) cmd.option("--all", "every backend configuration in the workspace");
  cmd
    .option("--precision <p>", "ask the backend for this precision (float64 | float32), if it offers several")
    .option("--fixture <file...>", "extra golden file(s) to check (any kind: 2-2-2 trajectory or CNN case)")
    .option("--only-fixtures", "check only the --fixture files, not the committed goldens")
    .option(
      "--workbook <file.xlsx...>",
      "class workbook(s): audited columns become extra 2-2-2 checks (default: $NNSPEC_WORKBOOK; needs exceljs)",
    )
    .option("--report <file>", "write the JSON report here (with --all: one file per run, suffixed)")
    .option("--browser", "run the suite inside headless Chromium (an installed one; needs vitest or vite)")
    .option(
      "--chromium <path>",
      "with --browser: the Chromium/Chrome executable (default $NNSPEC_CHROMIUM, then the usual paths)",
    )
    .option(
      "--browser-timeout <s>",
      `with --browser: give up after this many seconds, exit 3 (default ${DEFAULT_BROWSER_TIMEOUT_S})`,
    )
    .option(
      "--check-timeout <s>",
      `seconds one check may take before it fails as a timeout and the backend is restarted (default: 2-2-2 ${DEFAULT_CHECK_TIMEOUT_S.net222}, CNN ${DEFAULT_CHECK_TIMEOUT_S.cnn})`,
    )
    .option(
      "--in-process",
      "load the backend into the judge's own process (debugging): a crash or process.exit() then ends the run",
    )
    .action(async (raw: unknown) => {
      const o = parseWith(
        optionsSchema.refine((v) => v.backend !== undefined || v.all, {
          message: c.allRuns ? "give --backend <name|package|path> or --all" : "give --backend <package|path>",
          path: ["backend"],
        }),
        raw,
        "nnspec conformance options",
      );
      if (!o.browser && (o.chromium !== undefined || o.browserTimeout !== undefined))
        throw new UsageError("--chromium and --browser-timeout go with --browser");
      if (o.browser && o.workbook)
        throw new UsageError("class workbooks (--workbook) are read in Node: run them without --browser");
      if (o.browser && (o.checkTimeout !== undefined || o.inProcess))
        throw new UsageError(
          "--check-timeout and --in-process are for Node runs: with --browser, --browser-timeout bounds the run",
        );
      if (o.browser && o.backend && isCommandSpecifier(o.backend))
        throw new UsageError(`a "cmd:" backend is a program, not a page: run it without --browser`);
      if (o.inProcess && o.backend && isCommandSpecifier(o.backend))
        throw new UsageError(`a "cmd:" backend always runs in its own process: drop --in-process`);
      const fixtures = (o.fixture ?? []).map((f) => resolve(f));
      const runs =
        o.all && c.allRuns
          ? c.allRuns
          : [{ backend: o.backend!, options: o.precision ? { precision: o.precision } : {} }];
      const reportPaths = runs.map((_, i) =>
        o.report && runs.length > 1 ? o.report.replace(/(\.json)?$/, `-${i + 1}.json`) : o.report,
      );
      // A report that cannot be written is refused before any run starts, not after the whole suite.
      for (const p of reportPaths) if (p) checkReportPath(p);
      let failed = 0;
      for (const [i, run] of runs.entries()) {
        const reportPath = reportPaths[i];
        const common = {
          backend: run.backend,
          backendOptions: run.options,
          reportPath,
          ...(c.aliases ? { aliases: c.aliases } : {}),
          ...(o.onlyFixtures ? { onlyFixtures: fixtures } : { extraFixtures: fixtures }),
        };
        let report: ConformanceReport;
        if (o.browser) {
          report = await runConformanceInBrowser({
            ...common,
            ...(o.chromium ? { chromium: o.chromium } : {}),
            ...(o.browserTimeout ? { timeoutS: o.browserTimeout } : {}),
          });
        } else {
          // The first Ctrl-C stops the run cleanly: the backend is killed, the report written as incomplete (exit 3).
          const stop = new AbortController();
          const release = handleInterrupts((signal) => {
            console.error(
              `\ninterrupted by ${signal}: stopping the run and writing the report (again to stop at once)`,
            );
            stop.abort(`interrupted by ${signal}`);
          });
          try {
            report = await runConformance({
              ...common,
              signal: stop.signal,
              ...(o.workbook ? { workbooks: o.workbook.map((w) => resolve(w)) } : {}),
              ...(o.checkTimeout !== undefined ? { checkTimeoutS: o.checkTimeout } : {}),
              ...(o.inProcess ? { inProcess: true } : {}),
            });
          } finally {
            release();
            // In-process, a hung check's timers (a backend's setInterval) would keep this process alive forever.
            if (o.inProcess) setTimeout(() => process.exit(), 2000).unref();
          }
        }
        failed += report.summary.failed;
        console.log("");
      }
      if (failed > 0) process.exitCode = EXIT.fault;
    });
}
