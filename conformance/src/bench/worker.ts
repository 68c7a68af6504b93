import { readFileSync, writeSync } from "node:fs";
import {
  CLASS_CONFIG, initBuffers, initParameters, mulberry32, parseWith, TRAIN_BATCH_SIZE, type Backend, type BenchSpeed,
} from "@nnspec/spec";
import { loadBackend } from "../load-backend.ts";
import { collectChecks } from "../suite.ts";
import { runChecks } from "../runner.ts";
import { loadMnist } from "../data/mnist.ts";
import { trainCnn } from "../train/train-cnn.ts";
import { summarizeConformance } from "./accuracy.ts";
import { benchJobSchema, NET222_BENCH_LR, type BenchJob, type BenchPatch, type BenchPhaseName, type WorkerMessage } from "./protocol.ts";
import { calibrate, rateStats, timeReps } from "./stats.ts";

/**
 * The bench worker: one backend in its own Node process (so start-up and peak memory are its own, and a crash or
 * hang costs only its row). Spawned by spawn-worker.ts through worker-main.mjs; reports on fd 3 (protocol.ts).
 */

const processAt = Date.now();

function send(m: WorkerMessage): void {
  writeSync(3, `${JSON.stringify(m)}\n`);
}

function data(patch: BenchPatch): void {
  // maxRSS is in kilobytes (Node docs); the high-water mark so far, sent with every result so a later hang keeps it.
  send({ type: "data", patch, rssBytes: process.resourceUsage().maxRSS * 1024 });
}

async function phase(name: BenchPhaseName, body: () => Promise<string | void>, skip?: string): Promise<boolean> {
  send({ type: "phase", name });
  if (skip) {
    send({ type: "phase-end", name, status: "skipped", detail: skip });
    return true;
  }
  try {
    const detail = await body();
    send({ type: "phase-end", name, status: "ok", ...(detail ? { detail } : {}) });
    return true;
  } catch (err) {
    send({ type: "phase-end", name, status: "failed", detail: (err as Error).stack ?? String(err) });
    return false;
  }
}

/** Synthetic batch in the normalised pixel range: speed does not depend on the data, so no MNIST is needed for it. */
function syntheticBatch(n: number, seed: number): { x: Float32Array; labels: Uint8Array } {
  const rand = mulberry32(seed);
  return { x: Float32Array.from({ length: n * 784 }, () => rand() * 3 - 0.4), labels: Uint8Array.from({ length: n }, () => Math.floor(rand() * 10)) };
}

async function speedPhases(job: BenchJob, backend: Backend): Promise<void> {
  const speed: Partial<BenchSpeed> = {};
  const { net222, cnn } = backend;
  const seed = job.settings.seed;
  await phase("net222-speed", async () => {
    const lr = NET222_BENCH_LR;
    const steps = await calibrate(16, 200_000, job.net222TargetMs, (n) => net222!.train(CLASS_CONFIG, lr, n));
    const ms = await timeReps(1, job.reps.net222, () => net222!.train(CLASS_CONFIG, lr, steps));
    speed.net222StepsPerSecond = rateStats(steps, ms, "steps/s");
    data({ speed: { net222StepsPerSecond: speed.net222StepsPerSecond } });
    return `${steps} steps per repetition`;
  }, net222 ? undefined : "no 2-2-2 implementation");

  const noCnn = cnn ? undefined : "no CNN implementation";
  await phase("train-speed", async () => {
    const n = TRAIN_BATCH_SIZE;
    const { x, labels } = syntheticBatch(n, seed);
    const model = await cnn!.create({ parameters: initParameters(seed), buffers: initBuffers() });
    try {
      const sgd = { lr: 0.01, momentum: 0.9, weightDecay: 0 };
      const ms = await timeReps(1, job.reps.train, async (i) => {
        await model.forward(x, n, { mode: "train", dropout: { seed, step: i } });
        await model.backward(labels);
        await model.step(sgd);
      });
      data({ speed: { trainImagesPerSecond: rateStats(n, ms, "images/s") } });
    } finally {
      await model.dispose();
    }
  }, noCnn);

  await phase("infer-speed", async () => {
    const model = await cnn!.create({ parameters: initParameters(seed), buffers: initBuffers() });
    try {
      const big = syntheticBatch(128, seed + 1).x;
      const ms128 = await timeReps(1, job.reps.infer128, () => model.forward(big, 128, { mode: "eval" }));
      data({ speed: { inferImagesPerSecondBatch128: rateStats(128, ms128, "images/s") } });
      const one = syntheticBatch(1, seed + 2).x;
      const ms1 = await timeReps(5, job.reps.infer1, () => model.forward(one, 1, { mode: "eval" }));
      data({ speed: { inferImagesPerSecondBatch1: rateStats(1, ms1, "images/s") } });
    } finally {
      await model.dispose();
    }
  }, noCnn);
}

async function main(): Promise<void> {
  const jobPath = process.argv[2];
  if (!jobPath) throw new Error("usage: worker <job.json>");
  const job = parseWith(benchJobSchema, JSON.parse(readFileSync(jobPath, "utf8")), jobPath);

  let backend: Backend | undefined;
  const loaded = await phase("load", async () => {
    const t0 = performance.now();
    backend = await loadBackend(job.specifier, job.options);
    const backendLoadMs = performance.now() - t0;
    const b = backend;
    // First result: what a user waits for after launching — one batch-1 CNN forward (or a 2-2-2 forward).
    if (b.cnn) {
      const model = await b.cnn.create({ parameters: initParameters(job.settings.seed), buffers: initBuffers() });
      try {
        await model.forward(syntheticBatch(1, 1).x, 1, { mode: "eval" });
      } finally {
        await model.dispose();
      }
    } else if (b.net222) {
      await b.net222.forward(CLASS_CONFIG);
    }
    const m = b.manifest;
    data({ manifest: m, device: m.device, precision: m.precision, startup: { processAt, backendLoadMs, firstResultAt: Date.now() } });
    return `${m.name} ${m.version} (${m.precision}, ${m.device})`;
  });
  if (!loaded || !backend) {
    send({ type: "done" });
    return;
  }
  const b: Backend = backend;
  try {
    await phase("conformance", async () => {
      const t0 = performance.now();
      const only = job.fixtures.length > 0;
      const checks = await collectChecks({ precision: b.manifest.precision, ...(only ? { onlyFixtures: job.fixtures, workbooks: [] } : {}) });
      let done = 0;
      const results = await runChecks(b, checks, {
        onResult: (_r, i, n) => {
          // A line per ~5%: enough to show life without flooding the pipe.
          if (++done === n || i % Math.max(1, Math.round(n / 20)) === 0) send({ type: "progress", text: `${i + 1}/${n} checks` });
        },
      });
      const summary = summarizeConformance(results, job.fixtures, (performance.now() - t0) / 1000);
      data({ conformance: summary });
      if (summary.failed > 0) throw new Error(`${summary.failed} of ${summary.checks} checks failed (first: ${results.find((r) => r.status === "fail" || r.status === "error")?.id})`);
      return `${summary.passed}/${summary.checks} passed`;
    });
    await speedPhases(job, b);
    await phase("mnist-train", async () => {
      const mnist = await loadMnist({ dataDir: job.mnistDir! });
      const s = job.settings;
      const record = await trainCnn({
        backend: b, data: mnist, epochs: s.epochs, batchSize: s.batchSize, maxLr: s.maxLr, seed: s.seed,
        ...(s.limit !== null ? { limit: s.limit } : {}), ...(s.testLimit !== null ? { testLimit: s.testLimit } : {}),
      }, {
        onBatch: (p) => { if (p.batch % 5 === 0 || p.batch === p.batches) send({ type: "progress", text: `epoch ${p.epoch}/${p.epochs} batch ${p.batch}/${p.batches}, loss ${p.runningLoss.toFixed(3)}` }); },
        onEvalStart: (e) => send({ type: "progress", text: `epoch ${e}: evaluating` }),
      });
      const last = record.epochs.at(-1)!;
      data({
        training: {
          epochs: record.recipe.epochs, trainImages: record.trainImages, testImages: record.testImages,
          testAccuracy: last.testAccuracy, testLoss: last.testLoss, wallSeconds: record.wallSeconds, imagesPerSecond: record.imagesPerSecond,
          batchLoss: record.batchLoss, epochTestAccuracy: record.epochs.map((e) => e.testAccuracy),
        },
      });
      return `test accuracy ${(100 * last.testAccuracy).toFixed(2)}%`;
    }, !b.cnn ? "no CNN implementation" : job.mnistDir === null ? "no MNIST data (set MNIST_DIR)" : undefined);
  } finally {
    await b.dispose?.();
  }
  data({});
  send({ type: "done" });
}

await main();
// Backends may leave worker threads or timers behind; the parent has everything it needs.
process.exit(0);
