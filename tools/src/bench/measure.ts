import {
  CLASS_CONFIG,
  initBuffers,
  initParameters,
  TRAIN_BATCH_SIZE,
  type Backend,
  type BenchSpeed,
} from "@nnspec/spec";
import type { FixtureIO } from "@nnspec/fixtures/core";
import { collectChecks, errorMessage, runChecks } from "@nnspec/conformance";
import { summarizeConformance } from "./accuracy.ts";
import {
  NET222_BENCH_LR,
  type BenchJob,
  type BenchPatch,
  type BenchPhaseName,
  type WorkerMessage,
} from "./protocol.ts";
import { calibrate, rateStats, syntheticBatch, timeReps } from "./stats.ts";
import { fallbackMnistSkip, fallbackNote, isCpuFallback, repsFor } from "./fallback.ts";

/**
 * The bench's measurements, shared by the Node worker (worker.ts) and the in-page bench (page/bench-page.ts), so a
 * Node row and a Chromium row are timed by the same code. Runs in Node and in a browser: no node: imports here;
 * everything environment-specific (how messages leave, how the backend is obtained, memory, MNIST) is passed in.
 */
export interface MeasureHost {
  readonly job: BenchJob;
  /** Deliver one protocol message to the parent; awaited for phase boundaries and data, fire-and-forget for progress. */
  send(m: WorkerMessage): void | Promise<void>;
  /** Wall-clock ms (Date.now) when this process / page began running: start-up is measured from the spawn to here. */
  readonly processAt: number;
  /** Import + create the backend (timed as backendLoadMs, wasm / WebGL initialisation included). */
  loadBackend(): Promise<Backend>;
  /** Memory high-water mark so far in bytes, sent with every result; undefined where the host measures it itself. */
  memoryBytes(): number | undefined;
  /** Where golden files are read from (default: the environment's, see suite.ts). */
  readonly io?: FixtureIO;
  /** The MNIST phase: a function returning its detail line, or the reason it is skipped. */
  mnist(backend: Backend): { run: () => Promise<string> } | { skip: string };
}

/** NNSPEC_DEBUG=1 (Node; a page has no such variable). */
const debugging = () => typeof process !== "undefined" && process.env?.NNSPEC_DEBUG === "1";

/** Runs every phase in order and reports on `host.send`; the last message is always "done". */
export async function runMeasurements(host: MeasureHost): Promise<void> {
  const { job } = host;
  const data = (patch: BenchPatch) => {
    const bytes = host.memoryBytes();
    return host.send({ type: "data", patch, ...(bytes !== undefined ? { rssBytes: bytes } : {}) });
  };
  const phase = async (
    name: BenchPhaseName,
    // biome-ignore lint/suspicious/noConfusingVoidType: a phase body returns a note or nothing at all
    body: () => Promise<string | undefined | void>,
    skip?: string,
  ): Promise<boolean> => {
    await host.send({ type: "phase", name });
    if (skip) {
      await host.send({ type: "phase-end", name, status: "skipped", detail: skip });
      return true;
    }
    try {
      const detail = await body();
      await host.send({ type: "phase-end", name, status: "ok", ...(detail ? { detail } : {}) });
      return true;
    } catch (err) {
      // One line naming what failed; the stack only for a debugging session (NNSPEC_DEBUG=1).
      const stack = debugging() && err instanceof Error && err.stack ? `\n${err.stack}` : "";
      await host.send({ type: "phase-end", name, status: "failed", detail: `${errorMessage(err)}${stack}` });
      return false;
    }
  };

  let backend: Backend | undefined;
  const loaded = await phase("load", async () => {
    const t0 = performance.now();
    backend = await host.loadBackend();
    const backendLoadMs = performance.now() - t0;
    const b = backend;
    const m = b.manifest;
    await data({ manifest: m, device: m.device, precision: m.precision });
    // First result: what a user waits for after launching — one batch-1 CNN forward (or a 2-2-2 forward). A
    // backend that loaded but cannot compute fails its checks and speed phases, not "load": no start-up figure then.
    try {
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
    } catch (err) {
      return `${m.name} ${m.version} (${m.precision}, ${m.device}); first result failed: ${errorMessage(err)}`;
    }
    await data({ startup: { processAt: host.processAt, backendLoadMs, firstResultAt: Date.now() } });
    return `${m.name} ${m.version} (${m.precision}, ${m.device})`;
  });
  if (!loaded || !backend) {
    await host.send({ type: "done" });
    return;
  }
  const b: Backend = backend;
  // A CPU fallback adapter, as the backend itself reports it, gets the reduced budget (fallback.ts): hours otherwise.
  const fallback = isCpuFallback(b.manifest.device);
  const reps = repsFor(b.manifest.device, job.reps);
  if (fallback) await data({ note: fallbackNote(b.manifest.device, reps) });
  try {
    await phase("conformance", async () => {
      const t0 = performance.now();
      const only = job.fixtures.length > 0;
      const checks = await collectChecks({
        precision: b.manifest.precision,
        ...(only ? { onlyFixtures: job.fixtures, workbooks: [] } : {}),
        ...(host.io ? { io: host.io } : {}),
      });
      let done = 0;
      const results = await runChecks(b, checks, {
        onResult: (_r, i, n) => {
          // A line per ~5%: enough to show life without flooding the pipe.
          if (++done === n || i % Math.max(1, Math.round(n / 20)) === 0)
            void host.send({ type: "progress", text: `${i + 1}/${n} checks` });
        },
      });
      const summary = summarizeConformance(results, job.fixtures, (performance.now() - t0) / 1000);
      await data({ conformance: summary });
      if (summary.failed > 0)
        throw new Error(
          `${summary.failed} of ${summary.checks} checks failed (first: ${results.find((r) => r.status === "fail" || r.status === "error")?.id})`,
        );
      return `${summary.passed}/${summary.checks} passed`;
    });
    const speed = await speedPhases(job, reps, b, phase, data);
    const mnist = !b.cnn
      ? { skip: "no CNN implementation" }
      : fallback
        ? {
            skip: fallbackMnistSkip(b.manifest.device, job.settings, {
              train: speed.trainImagesPerSecond,
              infer128: speed.inferImagesPerSecondBatch128,
            }),
          }
        : host.mnist(b);
    await phase(
      "mnist-train",
      "run" in mnist ? mnist.run : async () => undefined,
      "skip" in mnist ? mnist.skip : undefined,
    );
  } finally {
    await b.dispose?.();
  }
  await data({});
  await host.send({ type: "done" });
}

type PhaseFn = (
  name: BenchPhaseName,
  // biome-ignore lint/suspicious/noConfusingVoidType: a phase body returns a note or nothing at all
  body: () => Promise<string | undefined | void>,
  skip?: string,
) => Promise<boolean>;

/** The speed phases with `reps` (the job's, or a fallback's reduced ones); returns what was measured. */
async function speedPhases(
  job: BenchJob,
  reps: BenchJob["reps"],
  backend: Backend,
  phase: PhaseFn,
  data: (p: BenchPatch) => void | Promise<void>,
): Promise<Partial<BenchSpeed>> {
  const speed: Partial<BenchSpeed> = {};
  const { net222, cnn } = backend;
  const seed = job.settings.seed;
  await phase(
    "net222-speed",
    async () => {
      const lr = NET222_BENCH_LR;
      const steps = await calibrate(16, 200_000, job.net222TargetMs, (n) => net222!.train(CLASS_CONFIG, lr, n));
      const ms = await timeReps(1, reps.net222, () => net222!.train(CLASS_CONFIG, lr, steps));
      speed.net222StepsPerSecond = rateStats(steps, ms, "steps/s");
      await data({ speed: { net222StepsPerSecond: speed.net222StepsPerSecond } });
      return `${steps} steps per repetition`;
    },
    net222 ? undefined : "no 2-2-2 implementation",
  );

  const noCnn = cnn ? undefined : "no CNN implementation";
  await phase(
    "train-speed",
    async () => {
      const n = TRAIN_BATCH_SIZE;
      const { x, labels } = syntheticBatch(n, seed);
      const model = await cnn!.create({ parameters: initParameters(seed), buffers: initBuffers() });
      try {
        const sgd = { lr: 0.01, momentum: 0.9, weightDecay: 0 };
        const ms = await timeReps(1, reps.train, async (i) => {
          await model.forward(x, n, { mode: "train", dropout: { seed, step: i } });
          await model.backward(labels);
          await model.step(sgd);
        });
        speed.trainImagesPerSecond = rateStats(n, ms, "images/s");
        await data({ speed: { trainImagesPerSecond: speed.trainImagesPerSecond } });
      } finally {
        await model.dispose();
      }
    },
    noCnn,
  );

  await phase(
    "infer-speed",
    async () => {
      const model = await cnn!.create({ parameters: initParameters(seed), buffers: initBuffers() });
      try {
        const big = syntheticBatch(128, seed + 1).x;
        const ms128 = await timeReps(1, reps.infer128, () => model.forward(big, 128, { mode: "eval" }));
        speed.inferImagesPerSecondBatch128 = rateStats(128, ms128, "images/s");
        await data({ speed: { inferImagesPerSecondBatch128: speed.inferImagesPerSecondBatch128 } });
        const one = syntheticBatch(1, seed + 2).x;
        const ms1 = await timeReps(5, reps.infer1, () => model.forward(one, 1, { mode: "eval" }));
        await data({ speed: { inferImagesPerSecondBatch1: rateStats(1, ms1, "images/s") } });
      } finally {
        await model.dispose();
      }
    },
    noCnn,
  );
  return speed;
}
