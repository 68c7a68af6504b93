import { join, resolve } from "node:path";
import type { Command } from "commander";
import pc from "picocolors";
import type { Backend } from "@nnspec/spec";
import { BackendLoadError } from "@nnspec/conformance/node";
import { loadWorkspaceBackend as loadBackend } from "../../workspace-backends.ts";
import { loadMnist } from "../../data/mnist.ts";
import { MnistFileError } from "../../data/idx.ts";
import { DownloadError } from "../../data/download.ts";
import { CheckpointError, loadCheckpoint, type Checkpoint } from "../../train/checkpoint.ts";
import { parseCliOptions, trainCliSchema, type TrainCliOptions } from "../../train/cli-options.ts";
import { progressHooks } from "../../train/progress.ts";
import { requireCnn, trainCnn, TrainError } from "../../train/train-cnn.ts";
import { writeTrainPlots } from "../../train/train-plots.ts";
import { writeFileAtomic } from "../../plot/atomic-write.ts";
import { UsageError } from "@nnspec/conformance";

/** Errors that are the user's to fix (data, checkpoint, backend choice) print as one message, no stack. */
function asUsage(err: unknown): never {
  const known = [MnistFileError, DownloadError, CheckpointError, TrainError, BackendLoadError];
  if (known.some((k) => err instanceof k)) throw new UsageError((err as Error).message);
  throw err;
}

export async function loadCnnBackend(specifier: string, options: Record<string, unknown> = {}): Promise<Backend> {
  const backend = await loadBackend(specifier, options).catch(asUsage);
  try {
    requireCnn(backend);
  } catch (err) {
    await backend.dispose?.();
    asUsage(err);
  }
  return backend;
}

/** On --resume, the checkpoint fixes recipe, seed and limit; an explicit different value is a mistake, not an override. */
function checkResumeConflicts(cmd: Command, o: TrainCliOptions, ck: Checkpoint, file: string): void {
  const t = ck.training;
  const s = t.recipe.schedule;
  const pairs: [string, string, unknown, unknown][] = [
    ["epochs", "--epochs", o.epochs, t.recipe.epochs],
    ["batch", "--batch", o.batch, t.recipe.batchSize],
    ["seed", "--seed", o.seed, t.seed],
    ["limit", "--limit", o.limit ?? null, t.limit],
    ["maxLr", "--max-lr", o.maxLr, s.kind === "onecycle" ? s.maxLr : undefined],
  ];
  const bad = pairs.filter(([key, , given, saved]) => cmd.getOptionValueSource(key) === "cli" && given !== saved);
  if (bad.length > 0) {
    throw new UsageError(`--resume ${file}: ${bad.map(([, flag, given, saved]) => `${flag} ${String(given)} differs from the checkpoint's ${String(saved)}`).join("; ")} (a resumed run keeps its recipe, seed and limit)`);
  }
}

export function registerTrain(program: Command): void {
  program
    .command("train")
    .description("Train the spec CNN on MNIST with a backend (SGD momentum 0.9, OneCycle, dropout); writes run.json, plots and a checkpoint")
    .option("--backend <name>", "backend short name, package or path", "reference")
    .option("--precision <p>", "precision option passed to the backend (float32 | float64)", "float32")
    .option("--epochs <n>", "epochs", "15")
    .option("--batch <n>", "training batch size", "128")
    .option("--seed <n>", "seed for init, data order and dropout", "1")
    .option("--limit <n>", "train on the first N images of the seed-shuffled training set")
    .option("--test-limit <n>", "evaluate on the first N test images")
    .option("--eval-batch <n>", "evaluation batch size", "1000")
    .option("--max-lr <lr>", "OneCycle max learning rate", "0.05")
    .option("--data-dir <dir>", "folder with the four MNIST .gz files (else $MNIST_DIR, else the download cache)")
    .option("--out <dir>", "output folder (default out/train/<backend>-<time>)")
    .option("--checkpoint <file>", "checkpoint manifest to write after every epoch (default <out>/checkpoint.json)")
    .option("--resume <file>", "continue from a checkpoint manifest")
    .option("--log-every <n>", "without a terminal: log a line every N batches", "50")
    .action(async (_raw: unknown, cmd: Command) => {
      const o = parseCliOptions(trainCliSchema, cmd.opts(), "train");
      const resume = o.resume ? { path: resolve(o.resume), checkpoint: await loadCheckpoint(resolve(o.resume)).catch(asUsage) } : undefined;
      if (resume && o.resume) checkResumeConflicts(cmd, o, resume.checkpoint, o.resume);
      const backend = await loadCnnBackend(o.backend, { precision: o.precision });
      try {
        const stamp = new Date().toISOString().replace(/[:.]/g, "-");
        const out = resolve(o.out ?? join("out", "train", `${backend.manifest.name}-${stamp}`));
        const checkpointPath = resolve(o.checkpoint ?? join(out, "checkpoint.json"));
        const data = await loadMnist({ ...(o.dataDir ? { dataDir: o.dataDir } : {}), log: (l) => console.log(pc.dim(l)) }).catch(asUsage);
        const m = backend.manifest;
        console.log(`nnspec train: backend ${m.name} ${m.version} (${m.precision}, ${m.device}), MNIST from ${data.dir}`);
        if (resume) console.log(`resuming from ${resume.path}: ${resume.checkpoint.training.epochsCompleted} epoch(s) done, step ${resume.checkpoint.training.globalStep} (SGD momentum restarts from zero)`);
        const record = await trainCnn({
          backend, data, epochs: o.epochs, batchSize: o.batch, maxLr: o.maxLr, seed: o.seed, evalBatchSize: o.evalBatch, checkpointPath,
          ...(o.limit !== undefined ? { limit: o.limit } : {}), ...(o.testLimit !== undefined ? { testLimit: o.testLimit } : {}),
          ...(resume ? { resume } : {}),
        }, progressHooks({ tty: Boolean(process.stdout.isTTY), logEvery: o.logEvery })).catch(asUsage);
        const runPath = join(out, "run.json");
        await writeFileAtomic(runPath, `${JSON.stringify(record, null, 1)}\n`);
        const plots = await writeTrainPlots(out, record);
        const last = record.epochs.at(-1);
        console.log(`done in ${record.wallSeconds.toFixed(1)} s, ${record.imagesPerSecond.toFixed(0)} img/s${last ? `; final test accuracy ${(100 * last.testAccuracy).toFixed(2)}%` : ""}`);
        console.log(`wrote ${runPath}\n      ${plots.join("\n      ")}\n      ${checkpointPath}`);
      } finally {
        await backend.dispose?.();
      }
    });
}

