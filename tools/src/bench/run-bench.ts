import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  benchResultsSchema,
  CLASS_CONFIG,
  initParameters,
  type BenchEntry,
  type BenchMachine,
  type BenchResults,
  type BenchSettings,
} from "@nnspec/spec";
import { listCnnFixtures, listNet222Fixtures } from "@nnspec/fixtures";
import { locateMnist } from "../data/mnist.ts";
import { trainingSubset } from "../train/train-cnn.ts";
import { BENCH_PHASES, NET222_BENCH_LR, type BenchJob, type PeerData } from "./protocol.ts";
import { exportOnnx, type ExportedModel, type OnnxPeerOptions } from "./onnx-model.ts";
import { cleanupOnExit } from "@nnspec/conformance/cli";
import { runWorker, type SpawnedWorker, type WorkerOutcome } from "./spawn-worker.ts";
import type { BenchProgress } from "./progress.ts";
import { DEFAULT_BUDGET, REPO_ROOT, type BenchTarget, type PeerId } from "./plan.ts";
import { browserReps, browserWorker } from "./browser.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
export const WORKER_ENTRY = join(HERE, "worker-main.mjs");
export const PEER_SCRIPT = resolve(HERE, "../../bench-peer/peer.py");
export const ONNX_PEER_ENTRY = join(HERE, "onnx-peer-main.mjs");
export const PYTHON = process.env.NNSPEC_PYTHON ?? "/usr/bin/python3";
const MNIST_TRAIN_COUNT = 60_000;
/** Threads of every peer: PyTorch's set_num_threads(2) in peer.py, and the ONNX Runtime builds to match it. */
export const PEER_THREADS = 2;

/** The ONNX Runtime rows: id → the runtime package the peer imports. */
const ORT_PEERS: Record<Exclude<PeerId, "pytorch">, OnnxPeerOptions["runtime"]> = {
  "ort-node": "onnxruntime-node",
  "ort-web": "onnxruntime-web",
};

export interface BenchRunOptions {
  readonly targets: readonly BenchTarget[];
  readonly settings: BenchSettings;
  readonly reps: BenchJob["reps"];
  readonly net222TargetMs: number;
  /** Peer rows to run after the backends (parsePeers); PyTorch's and the ONNX export need torch to import. */
  readonly peers: readonly PeerId[];
  readonly dataDir?: string;
  readonly progress: BenchProgress;
}

export function machine(): BenchMachine {
  const c = cpus();
  return {
    cpuModel: c[0]?.model.trim() ?? "unknown",
    cores: Math.max(1, c.length),
    totalMemoryBytes: totalmem(),
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    loadAverage: loadavg()[0] ?? 0,
  };
}

/** Whether PyTorch is importable by the peer's interpreter, and its version; otherwise why not. */
export function probeTorch(): { available: boolean; version: string | null; reason: string | null } {
  const r = spawnSync(PYTHON, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8", timeout: 120_000 });
  if (r.error) return { available: false, version: null, reason: `${PYTHON} cannot run: ${r.error.message}` };
  if (r.status !== 0)
    return {
      available: false,
      version: null,
      reason: `${PYTHON} -c "import torch" failed: ${(r.stderr || "").trim().split("\n").at(-1) ?? ""}`,
    };
  return { available: true, version: r.stdout.trim(), reason: null };
}

/** --quick checks one 2-2-2 trajectory and the smallest CNN case; other modes every committed golden. */
async function fixturesFor(settings: BenchSettings): Promise<string[]> {
  if (settings.mode !== "quick") return [];
  const net = await listNet222Fixtures();
  const all = await listCnnFixtures();
  // One case: the first batch-2 golden (the tie-routing case is batch 2 as well; quick runs need only one).
  const cnn = all.find((f) => /batch2/.test(f)) ?? all[0];
  return [net[0]!, ...(cnn ? [cnn] : [])];
}

async function mnistDirFor(dataDir: string | undefined, progress: BenchProgress): Promise<string | null> {
  try {
    return await locateMnist({ ...(dataDir ? { dataDir } : {}), log: (l) => progress.note(l) });
  } catch (err) {
    progress.note(`MNIST unavailable, the training phase is skipped: ${(err as Error).message.split("\n")[0]}`);
    return null;
  }
}

/**
 * --timeout-s is sized for the default budget (1 epoch on 8192 images); MNIST training gets it scaled by how much
 * more training the run asks for, so `--epochs 15` on all 60000 images is not cut off by a limit meant for minutes.
 */
export function trainingTimeout(s: BenchSettings): number {
  const images = s.epochs * (s.limit ?? MNIST_TRAIN_COUNT);
  return s.timeoutSeconds * Math.max(1, images / (DEFAULT_BUDGET.epochs * DEFAULT_BUDGET.limit));
}

/** A worker's outcome → a results row; phases it never reached are "skipped". */
export function entryOf(
  target: { id: string; kind: BenchEntry["kind"]; specifier: string; options: Record<string, unknown> },
  spawnedAt: number,
  o: WorkerOutcome,
): BenchEntry {
  const phases = [...o.phases];
  for (const name of BENCH_PHASES) {
    if (!phases.some((p) => p.name === name))
      phases.push({
        name,
        status: "skipped",
        seconds: 0,
        detail: o.failure
          ? `not reached (${o.failure.timedOut ? "timed out" : "failed"} in ${o.failure.phase})`
          : "not reached",
      });
  }
  phases.sort((a, b) => BENCH_PHASES.indexOf(a.name as never) - BENCH_PHASES.indexOf(b.name as never));
  const failedPhase = phases.find((p) => p.status === "failed" || p.status === "timed-out");
  // A row whose worker skipped its load never ran (an optional peer's runtime is missing): skipped, saying why.
  const notRun = o.phases.find((p) => p.name === "load" && p.status === "skipped");
  // A worker that died before reporting any phase failed too (its failure names "load").
  const status: BenchEntry["status"] = o.failure?.timedOut
    ? "timed-out"
    : failedPhase || o.failure
      ? "failed"
      : notRun
        ? "skipped"
        : "ok";
  const failure = o.failure
    ? { phase: o.failure.phase, message: o.failure.message }
    : failedPhase
      ? { phase: failedPhase.name, message: failedPhase.detail ?? "failed" }
      : notRun
        ? { phase: "load", message: notRun.detail ?? "skipped" }
        : null;
  const s = o.patch.startup;
  const m = o.patch.manifest ?? null;
  return {
    id: target.id,
    kind: target.kind,
    specifier: target.specifier,
    options: target.options,
    manifest: m,
    device: o.patch.device ?? m?.device ?? "",
    precision: o.patch.precision ?? m?.precision ?? "",
    status,
    failure,
    phases,
    startup: s
      ? {
          processMs: s.processAt - spawnedAt,
          backendLoadMs: s.backendLoadMs,
          firstResultMs: s.firstResultAt - spawnedAt,
        }
      : null,
    conformance: o.patch.conformance ?? null,
    speed: {
      net222StepsPerSecond: o.patch.speed.net222StepsPerSecond ?? null,
      trainImagesPerSecond: o.patch.speed.trainImagesPerSecond ?? null,
      inferImagesPerSecondBatch1: o.patch.speed.inferImagesPerSecondBatch1 ?? null,
      inferImagesPerSecondBatch128: o.patch.speed.inferImagesPerSecondBatch128 ?? null,
    },
    training: o.patch.training ?? null,
    ...(o.patch.agreement ? { agreement: o.patch.agreement } : {}),
    peakRssBytes: o.rssBytes,
    // A browser row's memory is Chromium's (renderer + GPU processes), measured by the vitest child's bench commands.
    ...(target.kind === "browser" ? { memoryKind: "chromium-renderer-gpu" as const } : {}),
    wallSeconds: o.wallSeconds,
    notes: o.notes,
  };
}

/** A row that never started (no PyTorch to export with, or the export failed): its load phase says why. */
export function notStartedOutcome(status: "skipped" | "failed", reason: string, seconds = 0): WorkerOutcome {
  return {
    phases: [{ name: "load", status, seconds, detail: reason }],
    patch: { speed: {} },
    notes: [],
    rssBytes: null,
    wallSeconds: seconds,
    failure: status === "failed" ? { phase: "load", message: reason, timedOut: false } : null,
  };
}

/** Run every target in its own process, then the peers (PyTorch, the ONNX Runtime builds); returns the validated results. */
export async function runBench(o: BenchRunOptions): Promise<BenchResults> {
  const startedAt = new Date().toISOString();
  const mach = machine();
  const work = mkdtempSync(join(tmpdir(), "nnspec-bench-"));
  // Interrupted (or crashed) runs remove their job files too.
  const releaseWork = cleanupOnExit(() => rmSync(work, { recursive: true, force: true }));
  try {
    const fixtures = await fixturesFor(o.settings);
    // Only Node workers and the peer train on MNIST (pages skip it): a browser-only bench never looks for (or downloads) it.
    const runsPytorch = o.peers.includes("pytorch");
    const ortPeers = o.peers.filter((p): p is keyof typeof ORT_PEERS => p !== "pytorch");
    const needsMnist = runsPytorch || o.targets.some((t) => t.kind === "backend");
    const mnistDir = needsMnist ? await mnistDirFor(o.dataDir, o.progress) : null;
    // The ONNX rows need torch too: their model is exported by PyTorch.
    const torch =
      o.peers.length > 0 ? probeTorch() : { available: false, version: null, reason: "not requested (--no-peer)" };
    if (o.peers.length > 0 && !torch.available)
      o.progress.note(`PyTorch peer${ortPeers.length ? " and ONNX export" : ""} skipped: ${torch.reason}`);
    const pytorchPeer = runsPytorch
      ? torch
      : { available: false, version: null, reason: o.peers.length > 0 ? "not requested (--peers)" : torch.reason };
    const total = o.targets.length + (pytorchPeer.available ? 1 : 0) + ortPeers.length;
    const entries: BenchEntry[] = [];

    type Row = { id: string; kind: BenchEntry["kind"]; specifier: string; options: Record<string, unknown> };
    const runOne = async (
      t: Row,
      spawnWith: (jobFile: string) => Pick<SpawnedWorker, "command" | "args" | "env" | "cwd">,
      peerDataFile: string | null,
      onnx?: BenchJob["onnx"],
    ) => {
      o.progress.entryStart(t.id, entries.length, total);
      const spawnedAt = Date.now();
      const job: BenchJob = {
        id: t.id,
        specifier: t.specifier,
        options: t.options,
        settings: o.settings,
        fixtures,
        mnistDir,
        peerDataFile,
        spawnedAt,
        reps: t.kind === "browser" ? browserReps(o.reps) : o.reps,
        net222TargetMs: o.net222TargetMs,
        ...(onnx ? { onnx } : {}),
      };
      const jobFile = join(work, `${entries.length}.job.json`);
      writeFileSync(jobFile, JSON.stringify(job));
      const outcome = await runWorker(
        {
          ...spawnWith(jobFile),
          timeoutSeconds: o.settings.timeoutSeconds,
          phaseTimeouts: { "mnist-train": trainingTimeout(o.settings) },
          spawnedAt,
        },
        {
          onPhase: (p) => o.progress.phase(t.id, p),
          onPhaseEnd: (p, status, seconds, detail) => o.progress.phaseEnd(t.id, p, status, seconds, detail),
          onProgress: (text) => o.progress.detail(t.id, text),
        },
      );
      entries.push(entryOf(t, spawnedAt, outcome));
    };

    for (const t of o.targets) {
      // Browser rows: a vitest child drives one Chromium page (browser.ts); the same protocol, timeouts and row.
      await runOne(
        t,
        t.kind === "browser"
          ? (jobFile) => browserWorker({ repoRoot: REPO_ROOT, jobFile })
          : (jobFile) => ({ command: process.execPath, args: [WORKER_ENTRY, jobFile] }),
        null,
      );
    }
    // The peers start from the backends' initial parameters: PyTorch trains from them, the ONNX model is exported with them.
    const peerDataFile = join(work, "peer-data.json");
    if (torch.available) {
      const peerData: PeerData = {
        subset: Array.from(trainingSubset(MNIST_TRAIN_COUNT, o.settings.seed, o.settings.limit)),
        parameters: Object.fromEntries(
          Object.entries(initParameters(o.settings.seed)).map(([k, v]) => [k, Array.from(v)]),
        ),
        net222: { config: { ...CLASS_CONFIG }, lr: NET222_BENCH_LR },
      };
      writeFileSync(peerDataFile, JSON.stringify(peerData));
    }
    if (pytorchPeer.available) {
      await runOne(
        { id: "pytorch", kind: "peer", specifier: "torch", options: { threads: PEER_THREADS, dtype: "float32" } },
        (jobFile) => ({ command: PYTHON, args: [PEER_SCRIPT, jobFile] }),
        peerDataFile,
      );
    }
    if (ortPeers.length > 0) {
      // One export for both runtimes, into the run's temporary folder; a failure becomes their rows, not a crash.
      let model: ExportedModel | { status: "skipped" | "failed"; reason: string; seconds: number };
      if (!torch.available) {
        model = { status: "skipped", reason: `no PyTorch to export the ONNX model: ${torch.reason}`, seconds: 0 };
      } else {
        const t0 = performance.now();
        try {
          model = await exportOnnx({
            python: PYTHON,
            outDir: work,
            parametersFile: peerDataFile,
            timeoutSeconds: o.settings.timeoutSeconds,
          });
          o.progress.note(
            `exported the CNN to ONNX (opset ${model.info.opset}, ${model.info.parameters} parameters, PyTorch ${model.info.torch}) in ${model.seconds.toFixed(1)} s`,
          );
        } catch (err) {
          model = { status: "failed", reason: (err as Error).message, seconds: (performance.now() - t0) / 1000 };
          o.progress.note(model.reason);
        }
      }
      for (const id of ortPeers) {
        const runtime = ORT_PEERS[id];
        const row: Row = {
          id,
          kind: "peer",
          specifier: runtime,
          options: { runtime, threads: PEER_THREADS } satisfies OnnxPeerOptions,
        };
        if ("model" in model) {
          const exported = model;
          await runOne(row, (jobFile) => ({ command: process.execPath, args: [ONNX_PEER_ENTRY, jobFile] }), null, {
            model: exported.model,
            check: exported.check,
          });
          entries
            .at(-1)!
            .notes.unshift(
              `model: ${exported.info.parameters} parameters, ONNX opset ${exported.info.opset}, exported by PyTorch ${exported.info.torch} in eval mode (export_onnx.py)`,
            );
        } else {
          o.progress.entryStart(id, entries.length, total);
          o.progress.phaseEnd(id, "load", model.status, model.seconds, model.reason);
          entries.push(entryOf(row, Date.now(), notStartedOutcome(model.status, model.reason, model.seconds)));
        }
      }
    }
    o.progress.stop();
    return benchResultsSchema.parse({
      kind: "nnspec.bench",
      formatVersion: 1,
      startedAt,
      finishedAt: new Date().toISOString(),
      machine: mach,
      settings: o.settings,
      peer: pytorchPeer,
      entries,
    } satisfies BenchResults);
  } finally {
    releaseWork();
    rmSync(work, { recursive: true, force: true });
  }
}
