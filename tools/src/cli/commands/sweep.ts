import { existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import type { Backend } from "@nnspec/spec";
import { loadWorkspaceBackend as loadBackend } from "../../workspace-backends.ts";
import { UsageError } from "@nnspec/conformance";
import { DEFAULT_OUT_DIR, DEFAULT_STEPS, SUMMARY_FILE, runSweep } from "../../sweep/run-sweep.ts";
import { parseSweepCli, readConfigFile } from "../../sweep/cli-options.ts";

/** `nnspec sweep`: the learning-rate comparison of the 2-2-2 network, with error curves. */
export function registerSweep(program: Command): void {
  program
    .command("sweep")
    .description(
      "Train the 2-2-2 network for several learning rates; print a comparison table and write error-vs-step charts (PNG + SVG) and sweep.json",
    )
    .option("--lr <list>", "comma-separated learning rates (default: the class values 0.1,0.2,0.5,0.8,1,2)")
    .option("--steps <n>", `training steps per learning rate (default: ${DEFAULT_STEPS})`)
    .option("--config <file>", "2-2-2 config JSON (inputs, targets, w1…w8, optional b1, b2); default: the class values")
    .option("--backend <name>", "backend: short name, package name or path", "reference")
    .option("--out <dir>", `output folder (default: ${DEFAULT_OUT_DIR})`)
    .option("--force", "replace an earlier sweep in --out (its sweep.json and every chart are removed first)")
    .action(async (raw: Record<string, unknown>) => {
      const opts = parseSweepCli(raw);
      const config = opts.config ? await readConfigFile(opts.config) : undefined;
      // Checked before any training: an earlier sweep is finished output, replaced only on request.
      const outDir = resolve(opts.out ?? DEFAULT_OUT_DIR);
      const st = await stat(outDir).catch(() => null);
      if (st && !st.isDirectory()) throw new UsageError(`option --out ${outDir}: exists and is not a folder`);
      if (st && !opts.force && existsSync(join(outDir, SUMMARY_FILE))) {
        throw new UsageError(
          `option --out ${outDir}: holds an earlier sweep (${SUMMARY_FILE}); pass --force to replace it (its charts are removed too), or choose another --out`,
        );
      }
      let backend: Backend;
      try {
        backend = await loadBackend(opts.backend);
      } catch (err) {
        if (err instanceof Error && err.name === "BackendLoadError") throw new UsageError(err.message);
        throw err;
      }
      try {
        const result = await runSweep({
          backend,
          ...(config ? { config, configSource: opts.config } : {}),
          ...(opts.lr ? { lrs: opts.lr } : {}),
          ...(opts.steps !== undefined ? { steps: opts.steps } : {}),
          outDir,
          replace: true,
          onRun: (lr, i, n) => process.stderr.write(`  trained η = ${lr} (${i + 1}/${n})\n`),
        });
        const m = result.summary.backend;
        console.log(
          `2-2-2 learning-rate sweep — backend ${m.name} ${m.version} (${m.precision}), config: ${result.summary.configSource}, ${result.summary.steps} steps\n`,
        );
        console.log(result.table);
        console.log(`\nwrote ${result.files.length} files to ${result.outDir}`);
      } finally {
        await backend.dispose?.();
      }
    });
}
