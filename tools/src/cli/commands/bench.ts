import { resolve } from "node:path";
import type { Command } from "commander";
import pc from "picocolors";
import { parseCliOptions } from "../../train/cli-options.ts";
import { DEFAULT_BUDGET, PEER_IDS, benchCliSchema, benchSettings, parsePeers, parseTargets } from "../../bench/plan.ts";
import { benchProgress } from "../../bench/progress.ts";
import { runBench } from "../../bench/run-bench.ts";
import {
  accuracyTable,
  deviceNote,
  fallbackNote,
  inferencePeerNote,
  machineLine,
  mainTable,
  missedMnist,
  textTable,
} from "../../bench/format.ts";
import { stageOf } from "../../bench/protocol.ts";
import { EXIT } from "@nnspec/conformance";
import { writeBenchOutput } from "../../bench/write-output.ts";

export function registerBench(program: Command): void {
  program
    .command("bench")
    .description(
      "Every backend side by side: accuracy against the goldens and speed, each in its own process, with a PyTorch peer; writes results.json, scoreboard.md, report.html",
    )
    .option(
      "--backends <list>",
      "comma-separated: workspace ids (reference-float64, reference-float32, tfjs-wasm, gpujs, <backend>-chromium) or package/path[@float32|@float64]; default: all",
    )
    .option("--quick", "small budget (tests, smoke runs): 2 repetitions, a golden subset, 256 training images", false)
    .option(
      "--epochs <n>",
      `train N epochs on all 60000 images and test on all 10000 (the full figure: --epochs 15); default ${DEFAULT_BUDGET.epochs} epoch on ${DEFAULT_BUDGET.limit} images, tested on ${DEFAULT_BUDGET.testLimit}`,
    )
    .option("--limit <n>", "training images (first N of the seed-shuffled set)")
    .option("--test-limit <n>", "test images")
    .option("--reps <n>", "timed repetitions per speed figure")
    .option("--seed <n>", "seed for init, data subset and order", "1")
    .option("--out <dir>", "output folder", "out/bench")
    .option(
      "--timeout-s <n>",
      `seconds each phase of a backend may take before it is killed and reported as timed out (MNIST training: scaled by its budget relative to the default ${DEFAULT_BUDGET.epochs} epoch × ${DEFAULT_BUDGET.limit} images)`,
      "900",
    )
    .option(
      "--peers <list>",
      `comparison rows after the backends, comma-separated: ${PEER_IDS.join(", ")} (PyTorch; the same CNN exported to ONNX in onnxruntime-node and onnxruntime-web's wasm build, inference only); default: all`,
    )
    .option("--no-peer", "run no peers (neither PyTorch nor ONNX Runtime)")
    .option("--data-dir <dir>", "MNIST folder (else $MNIST_DIR, else the download cache)")
    .action(async (_raw: unknown, cmd: Command) => {
      const o = parseCliOptions(benchCliSchema, cmd.opts(), "bench");
      const targets = parseTargets(o.backends);
      const peers = parsePeers(o);
      const { settings, reps, net222TargetMs } = benchSettings(o);
      const out = resolve(o.out);
      console.log(
        `nnspec bench: ${targets.map((t) => t.id).join(", ")}${peers.length ? ` + peers ${peers.join(", ")}` : ""} — mode ${settings.mode}, timeout ${settings.timeoutSeconds} s per phase`,
      );
      const progress = benchProgress({ tty: Boolean(process.stdout.isTTY), entries: targets.length + peers.length });
      const results = await runBench({
        targets,
        settings,
        reps,
        net222TargetMs,
        peers,
        progress,
        ...(o.dataDir ? { dataDir: o.dataDir } : {}),
      });
      const files = await writeBenchOutput(out, results);
      console.log(
        `\n${pc.dim(machineLine(results))}\n${textTable(mainTable(results))}\n\n${deviceNote(results).replace(/\*\*/g, "")}${fallbackNote(results) ? `\n\n${fallbackNote(results)}` : ""}${inferencePeerNote(results) ? `\n\n${inferencePeerNote(results)}` : ""}\n\nworst error / tolerance per check group:\n${textTable(accuracyTable(results))}`,
      );
      console.log(
        `\nwrote ${files.results}\n      ${files.scoreboard}\n      ${files.report}\n      ${files.charts.length} charts in ${resolve(out, "charts")}`,
      );
      const bad = results.entries.filter((e) => e.status === "failed" || e.status === "timed-out");
      if (bad.length > 0) {
        console.log(
          pc.red(
            `${bad.length} backend(s) did not finish cleanly: ${bad.map((e) => `${e.id} (${e.status} in ${e.failure ? stageOf(e.failure.phase) : "?"}${e.failure ? `: ${e.failure.message.split("\n")[0]}` : ""})`).join(", ")}`,
          ),
        );
        // A failure found is a fault (1); only timeouts left rows unmeasured: incomplete (3).
        process.exitCode = bad.some((e) => e.status === "failed") ? EXIT.fault : EXIT.incomplete;
      }
      const noData = results.entries.filter(missedMnist);
      if (noData.length > 0)
        console.log(
          pc.yellow(`no MNIST data: ${noData.map((e) => e.id).join(", ")} did not train (set MNIST_DIR or --data-dir)`),
        );
    });
}
