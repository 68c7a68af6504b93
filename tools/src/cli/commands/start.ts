import type { Command } from "commander";
import { join, resolve } from "node:path";
import pc from "picocolors";
import { z } from "zod";
import { parseWith } from "@nnspec/spec";
import { loadWorkspaceBackend as loadBackend } from "../../workspace-backends.ts";
import { runConformance } from "@nnspec/conformance/node";
import { EXIT } from "@nnspec/conformance";
import { WORKSPACE_BACKENDS } from "../../workspace-backends.ts";
import { runSweep } from "../../sweep/index.ts";

const optionsSchema = z.object({ out: z.string().min(1).default("out/start") });

/** `pnpm start`: the main job — the 2-2-2 learning-rate sweep, then conformance of the reference backend. */
export function registerStart(program: Command): void {
  program
    .command("start")
    .description("main job: 2-2-2 sweep (table + plots) and conformance of the reference backend")
    .option("--out <dir>", "output folder", "out/start")
    .action(async (raw: unknown) => {
      const o = parseWith(optionsSchema, raw, "nnspec start options");
      const out = resolve(o.out);
      console.log(pc.bold("1/2 learning-rate sweep of the 2-2-2 network (reference backend, class values)"));
      const backend = await loadBackend("reference");
      // `start` owns out/start: each run replaces the last one's sweep (charts included), by design.
      const sweep = await runSweep({ backend, outDir: join(out, "sweep"), replace: true });
      console.log(sweep.table);
      console.log(pc.bold("\n2/2 conformance: reference backend"));
      const report = await runConformance({
        backend: "reference",
        aliases: WORKSPACE_BACKENDS,
        reportPath: join(out, "conformance-reference.json"),
      });
      console.log(`\n${pc.bold("results in")} ${out}`);
      console.log(
        `  sweep/               table (sweep.json) and ${sweep.files.filter((f) => f.endsWith(".png")).length} PNG + ${sweep.files.filter((f) => f.endsWith(".svg")).length} SVG error curves`,
      );
      console.log(
        `  conformance-reference.json   ${report.summary.passed} passed, ${report.summary.failed} failed, ${report.summary.notImplemented} not implemented`,
      );
      if (report.summary.failed > 0) process.exitCode = EXIT.fault;
    });
}
