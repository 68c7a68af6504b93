import { readFileSync, writeSync } from "node:fs";
import { cpus } from "node:os";
import { compareValues, parseWith, toleranceFor, type BenchAgreement } from "@nnspec/spec";
import {
  benchJobSchema,
  INFERENCE_ONLY,
  type BenchPatch,
  type BenchPhaseName,
  type WorkerMessage,
} from "./protocol.ts";
import { onnxCheckSchema, onnxPeerOptionsSchema } from "./onnx-model.ts";
import { rateStats, syntheticBatch, timeReps } from "./stats.ts";

/**
 * An ONNX Runtime inference peer: the spec CNN exported by export_onnx.py, run by onnxruntime-node (native CPU) or
 * onnxruntime-web's wasm build (SIMD + threads, in Node). Its own process like every row (spawned through
 * onnx-peer-main.mjs), reporting on fd 3 with the bench protocol. Inference only: the training phases are skipped;
 * the "conformance" slot checks its log-probs against PyTorch float32's on a fixed batch.
 */

const processAt = Date.now();

// Both packages export onnxruntime-common's API; the node typings stand for either.
type Ort = typeof import("onnxruntime-node");
type Session = Awaited<ReturnType<Ort["InferenceSession"]["create"]>>;

class Skip extends Error {}

function send(m: WorkerMessage): void {
  writeSync(3, `${JSON.stringify(m)}\n`);
}
const memoryBytes = () => process.resourceUsage().maxRSS * 1024;
const data = (patch: BenchPatch) => send({ type: "data", patch, rssBytes: memoryBytes() });
const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).split("\n")[0]!;

async function phase(name: BenchPhaseName, body: (() => Promise<string>) | null, skip?: string): Promise<boolean> {
  send({ type: "phase", name });
  if (!body) {
    send({ type: "phase-end", name, status: "skipped", detail: skip ?? INFERENCE_ONLY });
    return true;
  }
  try {
    const detail = await body();
    send({ type: "phase-end", name, status: "ok", ...(detail ? { detail } : {}) });
    return true;
  } catch (err) {
    send({ type: "phase-end", name, status: err instanceof Skip ? "skipped" : "failed", detail: message(err) });
    return false;
  }
}

const isMissingModule = (err: unknown) =>
  (err as { code?: string })?.code === "ERR_MODULE_NOT_FOUND" ||
  (err as { code?: string })?.code === "MODULE_NOT_FOUND";

async function main(): Promise<void> {
  const jobPath = process.argv[2];
  if (!jobPath) throw new Error("usage: onnx-peer <job.json>");
  const job = parseWith(benchJobSchema, JSON.parse(readFileSync(jobPath, "utf8")), jobPath);
  const o = parseWith(onnxPeerOptionsSchema, job.options, `${jobPath} options`);
  if (!job.onnx) throw new Error(`${jobPath}: no ONNX model named (job.onnx)`);
  const files = job.onnx;
  let ort: Ort | undefined;
  let session: Session | undefined;
  const input = (x: Float32Array, n: number) => ({ input: new ort!.Tensor("float32", x, [n, 1, 28, 28]) });
  const logProbsOf = async (x: Float32Array, n: number) =>
    (await session!.run(input(x, n))).logProbs!.data as Float32Array;

  const loaded = await phase("load", async () => {
    const t0 = performance.now();
    try {
      ort = (await import(o.runtime)) as Ort;
    } catch (err) {
      // Not installed (an optional peer): the row says so and is skipped; anything else is a load failure.
      if (isMissingModule(err))
        throw new Skip(`${o.runtime} is not installed (a dependency of @nnspec/tools: pnpm install): ${message(err)}`);
      throw err;
    }
    let device: string;
    const versions = ort.env.versions as Record<string, string | undefined>;
    if (o.runtime === "onnxruntime-web") {
      // Its threads are worker_threads in Node; the package ships SIMD builds only (ort-wasm-simd-threaded.wasm).
      ort.env.wasm.numThreads = o.threads;
      ort.env.wasm.proxy = false;
      session = await ort.InferenceSession.create(readFileSync(files.model), {
        executionProviders: ["wasm"],
        graphOptimizationLevel: "all",
      });
      device = `onnxruntime-web ${versions.web ?? "?"}, wasm (SIMD, threads), ${ort.env.wasm.numThreads ?? "?"} threads, in Node ${process.version}`;
    } else {
      session = await ort.InferenceSession.create(readFileSync(files.model), {
        executionProviders: ["cpu"],
        graphOptimizationLevel: "all",
        intraOpNumThreads: o.threads,
        interOpNumThreads: 1,
        executionMode: "sequential",
      });
      device = `onnxruntime-node ${versions.node ?? "?"}, native CPU, ${o.threads} intra-op threads`;
    }
    const backendLoadMs = performance.now() - t0;
    await logProbsOf(syntheticBatch(1, 1).x, 1);
    data({ device, precision: "float32", startup: { processAt, backendLoadMs, firstResultAt: Date.now() } });
    return device;
  });
  if (!loaded) {
    send({ type: "done" });
    return;
  }

  await phase("conformance", async () => {
    const check = parseWith(onnxCheckSchema, JSON.parse(readFileSync(files.check, "utf8")), files.check);
    const actual = await logProbsOf(Float32Array.from(check.x), check.batch);
    const c = compareValues(actual, check.logProbs, toleranceFor("float32", "value"));
    const finite = Number.isFinite(c.worstRatio);
    const agreement: BenchAgreement = {
      reference: check.reference,
      quantity: "logProbs",
      images: check.batch,
      precision: "float32",
      worstRatio: finite ? c.worstRatio : null,
      worstAbsolute: finite ? c.worstAbsolute : null,
      pass: c.pass,
    };
    const where = `image ${Math.floor(c.worstIndex / 10)}, class ${c.worstIndex % 10}: ${c.actualAtWorst} vs ${c.expectedAtWorst}`;
    const line = `log-probs of ${check.batch} images vs ${check.reference}: worst err/tol ${c.worstRatio.toExponential(1)}, |Δ| ≤ ${c.worstAbsolute.toExponential(1)} (float32 tolerance)`;
    data({ agreement, note: `${line}${c.pass ? "" : ` — DISAGREES at ${where}`}` });
    if (!c.pass)
      throw new Error(
        `log-probs disagree with ${check.reference} beyond the float32 tolerance: worst err/tol ${c.worstRatio.toExponential(2)} at ${where}`,
      );
    return line;
  });
  await phase("net222-speed", null);
  await phase("train-speed", null);
  await phase("infer-speed", async () => {
    const seed = job.settings.seed;
    const big = syntheticBatch(128, seed + 1).x;
    // CPU time over wall time while timing batch 128: how many cores the runtime kept busy (threads really used).
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const ms128 = await timeReps(1, job.reps.infer128, () => logProbsOf(big, 128));
    const cpu = process.cpuUsage(cpu0);
    const busy = (cpu.user + cpu.system) / 1000 / (performance.now() - t0);
    data({
      speed: { inferImagesPerSecondBatch128: rateStats(128, ms128, "images/s") },
      note: `${o.threads} threads requested (${cpus().length} cores): CPU/wall ${busy.toFixed(2)} during batch 128`,
    });
    const one = syntheticBatch(1, seed + 2).x;
    const ms1 = await timeReps(5, job.reps.infer1, () => logProbsOf(one, 1));
    data({ speed: { inferImagesPerSecondBatch1: rateStats(1, ms1, "images/s") } });
    return `CPU/wall ${busy.toFixed(2)} at batch 128`;
  });
  await phase("mnist-train", null);
  await session?.release();
  data({});
  send({ type: "done" });
}

await main();
// ONNX Runtime's thread pools (worker_threads for the wasm build) would keep the process alive.
process.exit(0);
