import { readdir, readFile, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import pc from "picocolors";
import { z } from "zod";
import type { Backend } from "@nnspec/spec";
import { BackendLoadError } from "@nnspec/conformance/node";
import { handleInterrupts } from "@nnspec/conformance/cli";
import { EXIT, UsageError } from "@nnspec/conformance";
import { loadWorkspaceBackend as loadBackend } from "../../workspace-backends.ts";
import { loadMnist } from "../../data/mnist.ts";
import { MnistFileError } from "../../data/idx.ts";
import { DownloadError } from "../../data/download.ts";
import { CheckpointError, loadCheckpoint, type Checkpoint } from "../../train/checkpoint.ts";
import { parseCliOptions, trainCliSchema, type TrainCliOptions } from "../../train/cli-options.ts";
import { progressHooks } from "../../train/progress.ts";
import { hasOptimizerState, requireCnn, trainCnn, TrainError } from "../../train/train-cnn.ts";
import { writeTrainPlots } from "../../train/train-plots.ts";
import { recipeFromCli, recipeResumeConflict } from "../../train/recipe-options.ts";
import { writeFileAtomic } from "../../plot/atomic-write.ts";
import type { RunRecord } from "../../train/run-record.ts";

/** Errors that are the user's to fix (data, checkpoint, backend choice) print as one message, no stack. */
function asUsage(err: unknown): never {
  if (err instanceof UsageError) throw err;
  const known = [MnistFileError, DownloadError, CheckpointError, TrainError, BackendLoadError];
  if (known.some((k) => err instanceof k)) throw new UsageError((err as Error).message, { cause: err });
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

/**
 * On --resume, the checkpoint fixes the recipe, the seed, the data subset and the evaluation settings: an explicitly
 * different value is a mistake, not an override, and is refused by name.
 */
function checkResumeConflicts(cmd: Command, o: TrainCliOptions, ck: Checkpoint, file: string): void {
  const t = ck.training;
  const s = t.recipe.schedule;
  const pairs: [string, string, unknown, unknown][] = [
    ["epochs", "--epochs", o.epochs, t.recipe.epochs],
    ["batch", "--batch", o.batch, t.recipe.batchSize],
    ["seed", "--seed", o.seed, t.seed],
    ["limit", "--limit", o.limit ?? null, t.limit],
    ["maxLr", "--max-lr", o.maxLr, s.kind === "onecycle" ? s.maxLr : undefined],
    // formatVersion 1 did not record these: the options given now apply (and are recorded from now on).
    ...(ck.settingsRecorded
      ? ([
          ["testLimit", "--test-limit", o.testLimit ?? null, t.testLimit],
          ["evalBatch", "--eval-batch", o.evalBatch, t.evalBatchSize],
        ] as [string, string, unknown, unknown][])
      : []),
  ];
  const bad = pairs.filter(([key, , given, saved]) => cmd.getOptionValueSource(key) === "cli" && given !== saved);
  if (bad.length > 0) {
    throw new UsageError(
      `--resume ${file}: ${bad.map(([, flag, given, saved]) => `${flag} ${String(given)} differs from the checkpoint's ${String(saved ?? "(all)")}`).join("; ")} (a resumed run keeps its recipe, seed, data and evaluation settings)`,
    );
  }
  if (t.epochsCompleted >= t.recipe.epochs)
    throw new UsageError(
      `--resume ${file}: the run already completed all ${t.recipe.epochs} epoch(s); nothing to resume`,
    );
}

const PLOT_FILES = ["loss.png", "loss.svg", "accuracy.png", "accuracy.svg"];

/** What an earlier run left in a folder: its run.json status, or null. */
async function earlierRun(
  out: string,
): Promise<{ status: string; epochs: number; where: string; checkpoint: string | null } | null> {
  let text: string;
  try {
    text = await readFile(join(out, "run.json"), "utf8");
  } catch {
    return null;
  }
  // Lenient on purpose: any run.json (also formatVersion 1, written only when a run finished) marks the folder as taken.
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { status: "unreadable", epochs: 0, where: "", checkpoint: null };
  }
  const r = z
    .object({
      status: z.string().optional(),
      epochs: z.array(z.unknown()).optional(),
      stop: z.object({ epoch: z.number(), batch: z.number().nullable() }).passthrough().nullable().optional(),
      checkpoint: z.object({ path: z.string() }).passthrough().nullable().optional(),
    })
    .passthrough()
    .safeParse(json);
  if (!r.success) return { status: "unknown", epochs: 0, where: "", checkpoint: null };
  const stop = r.data.stop;
  return {
    status: r.data.status ?? "complete",
    epochs: r.data.epochs?.length ?? 0,
    where: stop ? ` at epoch ${stop.epoch}${stop.batch ? `, batch ${stop.batch}` : ""}` : "",
    checkpoint: r.data.checkpoint?.path ?? null,
  };
}

/**
 * --out must be a folder that holds no finished run, and a fresh run must not bury an unfinished one or another
 * run's checkpoint: all refused by name unless --force, which then removes what the new run would leave stale.
 */
async function prepareOutput(
  out: string,
  checkpointPath: string,
  resumePath: string | null,
  force: boolean,
): Promise<void> {
  const st = await stat(out).catch(() => null);
  if (st && !st.isDirectory()) throw new UsageError(`--out ${out}: exists and is not a folder`);
  const run = st ? await earlierRun(out) : null;
  const problems: string[] = [];
  if (run && run.status === "complete")
    problems.push(`--out ${out} holds a finished run (run.json, ${run.epochs} epoch(s))`);
  else if (run && resumePath === null)
    problems.push(
      `--out ${out} holds an unfinished run (${run.status}${run.where})${run.checkpoint ? `: resume it with --resume ${run.checkpoint}` : ""}`,
    );
  const ckExists = await stat(checkpointPath).then(
    () => true,
    () => false,
  );
  if (ckExists && checkpointPath !== resumePath)
    problems.push(`--checkpoint ${checkpointPath} already exists and is not the checkpoint being resumed`);
  if (problems.length === 0) return;
  if (!force) throw new UsageError(`${problems.join("; ")}; pass --force to replace it, or choose another --out`);
  // --force: nothing of the earlier run may stay beside the new one.
  for (const f of ["run.json", ...PLOT_FILES]) await rm(join(out, f), { force: true });
  if (ckExists && checkpointPath !== resumePath) {
    const stem = basename(checkpointPath).replace(/\.json$/i, "");
    const escaped = stem.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const ours = new RegExp(`^${escaped}(\\.step\\d+\\.[0-9a-f]{12})?\\.bin$`);
    for (const f of await readdir(dirname(checkpointPath)))
      if (ours.test(f)) await rm(join(dirname(checkpointPath), f), { force: true });
    await rm(checkpointPath, { force: true });
  }
}

/** A command line a shell takes back as it is. */
const shellWord = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

function resumeCommand(checkpoint: string, out: string, o: TrainCliOptions): string {
  const args = [
    "pnpm",
    "nnspec",
    "train",
    "--resume",
    checkpoint,
    "--out",
    out,
    ...(o.dataDir ? ["--data-dir", resolve(o.dataDir)] : []),
  ];
  return args.map(shellWord).join(" ");
}

/** Where a stopped run is, and what to do next. */
function reportStop(record: RunRecord, o: TrainCliOptions, out: string, signal: string | null): void {
  const s = record.stop!;
  const where = `epoch ${s.epoch}${s.batch ? `, batch ${s.batch}` : " (evaluation / end of epoch)"}, step ${s.step}`;
  const ck = record.checkpoint;
  if (s.reason === "diverged") {
    console.error(pc.red(`error: training diverged at ${where}: ${s.detail}`));
    console.error(
      ck
        ? `the last good checkpoint is kept: ${ck.path} (${ck.epochsCompleted} epoch(s), step ${ck.globalStep}); run.json records the divergence`
        : "no checkpoint was written (it diverged before the first epoch ended); run.json records the divergence",
    );
    return;
  }
  console.error(pc.yellow(`interrupted by ${signal ?? "a signal"} at ${where}`));
  if (ck) console.error(`saved ${ck.path}; resume with:\n  ${resumeCommand(ck.path, out, o)}`);
}

export function registerTrain(program: Command): void {
  program
    .command("train")
    .description(
      "Train the spec CNN on MNIST with a backend (SGD momentum 0.9, OneCycle, dropout); writes run.json, plots and a checkpoint",
    )
    .option("--backend <name>", "backend short name, package or path (on --resume: the checkpoint's)", "reference")
    .option(
      "--precision <p>",
      "precision option passed to the backend (float32 | float64; on --resume: the checkpoint's)",
      "float32",
    )
    .option("--epochs <n>", "epochs", "15")
    .option("--batch <n>", "training batch size", "128")
    .option("--seed <n>", "seed for init, data order and dropout", "1")
    .option("--limit <n>", "train on the first N images of the seed-shuffled training set")
    .option("--test-limit <n>", "evaluate on the first N test images")
    .option(
      "--threads <n>",
      "threads option passed to the backend (backends that offer one: reference, tfjs-wasm, wasm, the PyTorch peer); default: the backend's own (on --resume: the checkpoint's)",
    )
    .option("--eval-batch <n>", "evaluation batch size", "1000")
    .option("--max-lr <lr>", "OneCycle max learning rate", "0.05")
    .option(
      "--recipe <name|file>",
      "a named recipe (reference, reference-rotate, reference-affine, half-dropout) or a recipe .json; --epochs/--batch/--max-lr/--weight-decay/--augment/--dropout typed here override it",
      "reference",
    )
    .option(
      "--augment <kind>",
      "training-data augmentation: none | rotate | affine (seeded, bilinear, in the data pipeline)",
    )
    .option("--weight-decay <wd>", "SGD weight decay")
    .option(
      "--dropout <rates>",
      "drop probability of each of the 3 dropout layers, comma-separated (the architecture's: 0.2,0.2,0.15)",
    )
    .option("--data-dir <dir>", "folder with the four MNIST .gz files (else $MNIST_DIR, else the download cache)")
    .option("--out <dir>", "output folder (default out/train/<backend>-<time>; on --resume: the checkpoint's folder)")
    .option("--checkpoint <file>", "checkpoint manifest to write after every epoch (default <out>/checkpoint.json)")
    .option("--resume <file>", "continue from a checkpoint manifest, with its settings and SGD momentum")
    .option(
      "--restart-momentum",
      "allow a resume without saved momentum (or onto a backend that cannot restore it): momentum restarts from zero",
      false,
    )
    .option(
      "--allow-backend-switch",
      "allow a resume with another backend or precision than the checkpoint's (run.json names the backend of every epoch)",
      false,
    )
    .option("--force", "replace a finished run in --out (or, for a new run, any earlier run there)", false)
    .option("--log-every <n>", "without a terminal: log a line every N batches", "50")
    .action(async (_raw: unknown, cmd: Command) => {
      const o = parseCliOptions(trainCliSchema, cmd.opts(), "train");
      const resumePath = o.resume ? resolve(o.resume) : null;
      const ck = resumePath ? await loadCheckpoint(resumePath).catch(asUsage) : null;
      if (ck && o.resume) checkResumeConflicts(cmd, o, ck, o.resume);
      const fromCli = (key: string) => cmd.getOptionValueSource(key) === "cli";
      // The recipe: --recipe with the recipe options typed here applied (a resume keeps the checkpoint's).
      const recipe = ck ? null : await recipeFromCli(o, fromCli).catch(asUsage);
      const recipeConflict = ck ? await recipeResumeConflict(ck.training.recipe, o, fromCli).catch(asUsage) : null;
      if (recipeConflict) throw new UsageError(`--resume ${o.resume}: ${recipeConflict}`);
      // A resume loads the checkpoint's backend unless --backend/--precision say otherwise (a switch, checked below).
      const specifier = ck && !fromCli("backend") ? ck.training.backendSpecifier : o.backend;
      const precision =
        ck?.settingsRecorded && !fromCli("precision")
          ? (ck.training.backendOptions.precision ?? o.precision)
          : o.precision;
      // Threads change speed, not results' meaning; a resume keeps the recorded count unless --threads is typed.
      const threadsText = fromCli("threads") ? String(o.threads) : ck?.training.backendOptions.threads;
      const threads = threadsText !== undefined ? Number(threadsText) : undefined;
      const backend = await loadCnnBackend(specifier, { precision, ...(threads !== undefined ? { threads } : {}) });
      let releaseSignals = () => {};
      try {
        const m = backend.manifest;
        if (ck) {
          const t = ck.training;
          const same = m.name === t.backend && (!ck.settingsRecorded || m.precision === t.precision);
          if (!same && !o.allowBackendSwitch) {
            throw new UsageError(
              `--resume ${o.resume}: the checkpoint was trained by ${t.backend}${ck.settingsRecorded ? ` (${t.precision})` : ""}, not ${m.name} (${m.precision}); pass --allow-backend-switch to continue with ${m.name} (run.json then names the backend of every epoch)`,
            );
          }
          if (!o.restartMomentum && ck.momentum === null) {
            throw new UsageError(
              `--resume ${o.resume}: the checkpoint holds no SGD momentum (${ck.formatVersion === 1 ? "formatVersion 1" : `backend ${t.backend} could not export it`}); pass --restart-momentum to resume with momentum restarted from zero (later steps then differ from an uninterrupted run)`,
            );
          }
          if (!o.restartMomentum && !hasOptimizerState(backend)) {
            throw new UsageError(
              `--resume ${o.resume}: backend ${m.name} cannot restore SGD momentum (it does not claim cnn.optimizer-state); pass --restart-momentum to resume with momentum restarted from zero`,
            );
          }
        }
        const stamp = new Date().toISOString().replace(/[:.]/g, "-");
        const out = resolve(o.out ?? (resumePath ? dirname(resumePath) : join("out", "train", `${m.name}-${stamp}`)));
        const checkpointPath = resolve(
          o.checkpoint ?? (resumePath && !o.out ? resumePath : join(out, "checkpoint.json")),
        );
        await prepareOutput(out, checkpointPath, resumePath, o.force);
        const data = await loadMnist({
          ...(o.dataDir ? { dataDir: o.dataDir } : {}),
          log: (l) => console.log(pc.dim(l)),
        }).catch(asUsage);
        console.log(
          `nnspec train: backend ${m.name} ${m.version} (${m.precision}, ${m.device}), MNIST from ${data.dir}`,
        );
        if (ck) {
          const t = ck.training;
          const at = t.partialEpoch
            ? `epoch ${t.epochsCompleted + 1} batch ${t.partialEpoch.batchesDone}`
            : `${t.epochsCompleted} epoch(s) done`;
          console.log(
            `resuming from ${resumePath}: ${at}, step ${t.globalStep}; SGD momentum ${ck.momentum !== null && hasOptimizerState(backend) ? "restored" : "restarts from zero (--restart-momentum)"}`,
          );
        }

        // SIGINT/SIGTERM: finish the batch, save exactly there, write run.json and plots, print the resume command.
        let signal: NodeJS.Signals | null = null;
        releaseSignals = handleInterrupts((sig) => {
          signal = sig;
          console.error(
            pc.yellow(`\n${sig}: stopping after the current batch to save a checkpoint (${sig} again stops at once)`),
          );
        });
        const record = await trainCnn(
          {
            backend,
            data,
            epochs: o.epochs,
            batchSize: o.batch,
            maxLr: o.maxLr,
            seed: o.seed,
            evalBatchSize: o.evalBatch,
            checkpointPath,
            backendSpecifier: specifier.startsWith(".") ? resolve(specifier) : specifier,
            backendOptions: { precision, ...(threads !== undefined ? { threads: String(threads) } : {}) },
            shouldStop: () => signal !== null,
            ...(recipe ? { recipe } : {}),
            ...(o.limit !== undefined ? { limit: o.limit } : {}),
            ...(o.testLimit !== undefined ? { testLimit: o.testLimit } : {}),
            ...(ck && resumePath
              ? { resume: { path: resumePath, checkpoint: ck, restartMomentum: o.restartMomentum } }
              : {}),
          },
          progressHooks({ tty: Boolean(process.stdout.isTTY), logEvery: o.logEvery }),
        ).catch(asUsage);
        const runPath = join(out, "run.json");
        await writeFileAtomic(runPath, `${JSON.stringify(record, null, 1)}\n`);
        const plots = record.batchLoss.length > 0 ? await writeTrainPlots(out, record) : [];
        const last = record.epochs.at(-1);
        console.log(
          `${record.status === "complete" ? "done" : record.status} after ${record.wallSeconds.toFixed(1)} s, ${record.imagesPerSecond.toFixed(0)} img/s${last ? `; test accuracy after epoch ${last.epoch}: ${(100 * last.testAccuracy).toFixed(2)}%` : ""}`,
        );
        console.log(
          `wrote ${[runPath, ...plots].join("\n      ")}${record.checkpoint ? `\n      ${record.checkpoint.path}` : ""}`,
        );
        if (record.status !== "complete") {
          reportStop(record, o, out, signal);
          process.exitCode = record.status === "diverged" ? EXIT.fault : EXIT.incomplete;
        }
      } finally {
        releaseSignals();
        await backend.dispose?.();
      }
    });
}
