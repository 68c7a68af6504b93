import { describe, expect, it } from "vitest";
import { benchResultsSchema, type Backend, type BenchSpeed, type BenchStats, type CnnModel } from "@nnspec/spec";
import { listNet222Fixtures } from "@nnspec/fixtures";
import { runMeasurements, type MeasureHost } from "../src/bench/measure.ts";
import { benchSettings } from "../src/bench/plan.ts";
import { entryOf, machine } from "../src/bench/run-bench.ts";
import { fallbackMnistSkip, isCpuFallback, repsFor } from "../src/bench/fallback.ts";
import { accuracyCell, fallbackNote, mainTable, statusCell } from "../src/bench/format.ts";
import type { BenchJob, WorkerMessage } from "../src/bench/protocol.ts";
import type { WorkerOutcome } from "../src/bench/spawn-worker.ts";

// The CPU fallback rule (fallback.ts) with fake backends: no WebGPU adapter, no real training.

const SWIFTSHADER =
  "WGSL compute shaders, WebGPU google/swiftshader (SwiftShader driver 5.0.0), CPU fallback adapter (software, not a GPU), via Dawn (webgpu 0.6.2)";
const HARDWARE = "WGSL compute shaders, WebGPU nvidia/hopper (NVIDIA H200), hardware adapter, via Dawn (webgpu 0.6.2)";

const defaults = benchSettings({ quick: false, seed: 1, out: "x", timeoutS: 60, peer: false });

/** A backend whose CNN does nothing (instantly), counting train-mode forwards; its manifest names `device`. */
function fakeBackend(device: string): { backend: Backend; trainForwards: () => number } {
  let trainForwards = 0;
  const model = {
    forward: async (_x: unknown, n: number, o: { mode: string }) => {
      if (o.mode === "train") trainForwards++;
      return { logProbs: new Float32Array(n * 10) };
    },
    backward: async () => ({ loss: 0 }),
    step: async () => {},
    dispose: async () => {},
  } as unknown as CnnModel;
  const backend: Backend = {
    manifest: {
      name: "fake-gpu",
      version: "0.0.0",
      precision: "float32",
      environment: "node",
      device,
      capabilities: [],
    },
    cnn: { create: async () => model },
  };
  return { backend, trainForwards: () => trainForwards };
}

/** Run every phase against a fake backend; the host's MNIST phase is either a training run or (a page's) skip. */
async function measure(device: string, mnist: "run" | "page-skip" = "run") {
  const fake = fakeBackend(device);
  const messages: WorkerMessage[] = [];
  let trained = false;
  const job: BenchJob = {
    id: "fake",
    specifier: "fake",
    options: {},
    settings: defaults.settings,
    // One golden keeps the conformance phase short (a backend without capabilities runs none of its checks).
    fixtures: [(await listNet222Fixtures())[0]!],
    mnistDir: "/nowhere",
    peerDataFile: null,
    spawnedAt: Date.now(),
    reps: defaults.reps,
    net222TargetMs: 1,
  };
  const host: MeasureHost = {
    job,
    send: (m) => void messages.push(m),
    processAt: Date.now(),
    loadBackend: async () => fake.backend,
    memoryBytes: () => undefined,
    mnist: () =>
      mnist === "run"
        ? {
            run: async () => {
              trained = true;
              return "trained";
            },
          }
        : { skip: "not run in the browser" },
  };
  await runMeasurements(host);
  const speed: Partial<BenchSpeed> = {};
  const notes: string[] = [];
  for (const m of messages)
    if (m.type === "data") {
      Object.assign(speed, m.patch.speed);
      if (m.patch.note) notes.push(m.patch.note);
    }
  const phases = messages.flatMap((m) => (m.type === "phase-end" ? [m] : []));
  return { speed, notes, phases, trained, trainForwards: fake.trainForwards(), messages };
}

describe("CPU fallback adapters: the decision", () => {
  it("is read from the device line the backend reports", () => {
    expect(isCpuFallback(SWIFTSHADER)).toBe(true);
    expect(
      isCpuFallback("tfjs 4.22.0 webgl, WebGL 2, ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero)))"),
    ).toBe(true);
    expect(isCpuFallback(HARDWARE)).toBe(false);
    expect(isCpuFallback("wasm simd128 (AssemblyScript), 2 threads")).toBe(false);
  });
  it("reduces the CNN repetitions on a fallback only, never raising a smaller budget", () => {
    const reps = { train: 5, infer128: 5, infer1: 20, net222: 5 };
    expect(repsFor(SWIFTSHADER, reps)).toEqual({ train: 1, infer128: 1, infer1: 5, net222: 5 });
    expect(repsFor(HARDWARE, reps)).toBe(reps);
    expect(repsFor(SWIFTSHADER, { train: 1, infer128: 1, infer1: 2, net222: 1 })).toEqual({
      train: 1,
      infer128: 1,
      infer1: 2,
      net222: 1,
    });
  });
  it("estimates the skipped MNIST budget from the measured speeds", () => {
    const stats = (median: number): BenchStats => ({ median, min: median, max: median, reps: 1, unit: "images/s" });
    // 8192 / 1.23 + 1000 / 4.33 ≈ 6891 s
    expect(fallbackMnistSkip(SWIFTSHADER, defaults.settings, { train: stats(1.23), infer128: stats(4.33) })).toBe(
      "CPU fallback adapter (SwiftShader): not run — 1 epoch on 8192 images would take ~1.9 h at the measured 1.23 img/s",
    );
    expect(fallbackMnistSkip("CPU fallback adapter", defaults.settings, {})).toMatch(
      /^CPU fallback adapter: not run — .*no training speed measured/,
    );
  });
});

describe("CPU fallback adapters: the measurements", () => {
  it("on a fallback: 1 timed repetition at batch 128, 5 at batch 1, MNIST skipped with a reason, no failure", async () => {
    const r = await measure(SWIFTSHADER);
    expect(r.trained).toBe(false);
    expect(r.trainForwards).toBe(2); // warm-up + 1 timed
    expect(r.speed.trainImagesPerSecond?.reps).toBe(1);
    expect(r.speed.inferImagesPerSecondBatch128?.reps).toBe(1);
    expect(r.speed.inferImagesPerSecondBatch1?.reps).toBe(5);
    expect(r.notes.join("\n")).toMatch(/^reduced budget: CPU fallback adapter \(SwiftShader\), so 1 timed repetition/m);
    const mnist = r.phases.find((p) => p.name === "mnist-train")!;
    expect(mnist).toMatchObject({ status: "skipped" });
    expect(mnist.detail).toMatch(
      /^CPU fallback adapter \(SwiftShader\): not run — 1 epoch on 8192 images would take ~/,
    );
    expect(r.phases.filter((p) => p.status === "failed")).toEqual([]);
    expect(r.messages.at(-1)).toEqual({ type: "done" });
  });
  it("a Chromium page's row gets the same rule (its own MNIST skip is replaced by the fallback reason)", async () => {
    const r = await measure(SWIFTSHADER, "page-skip");
    expect(r.phases.find((p) => p.name === "mnist-train")?.detail).toMatch(/^CPU fallback adapter/);
    expect(r.speed.trainImagesPerSecond?.reps).toBe(1);
  });
  it("on a hardware adapter nothing changes: the job's repetitions and the MNIST training run", async () => {
    const r = await measure(HARDWARE);
    expect(r.trained).toBe(true);
    expect(r.trainForwards).toBe(1 + defaults.reps.train);
    expect(r.speed.trainImagesPerSecond?.reps).toBe(defaults.reps.train);
    expect(r.speed.inferImagesPerSecondBatch128?.reps).toBe(defaults.reps.infer128);
    expect(r.speed.inferImagesPerSecondBatch1?.reps).toBe(defaults.reps.infer1);
    expect(r.notes).toEqual([]);
    expect(r.phases.find((p) => p.name === "mnist-train")).toMatchObject({ status: "ok", detail: "trained" });
  });
});

describe("CPU fallback adapters: the report", () => {
  /** A row the way run-bench builds it from what the worker sent. */
  async function row(device: string) {
    const r = await measure(device);
    const patch: WorkerOutcome["patch"] = { speed: r.speed, device };
    const outcome: WorkerOutcome = {
      phases: r.phases.map((p) => ({
        name: p.name,
        status: p.status,
        seconds: 0,
        ...(p.detail ? { detail: p.detail } : {}),
      })),
      patch,
      notes: r.notes,
      rssBytes: null,
      wallSeconds: 1,
      failure: null,
    };
    return entryOf(
      { id: device === SWIFTSHADER ? "webgpu" : "gpu", kind: "backend", specifier: "fake", options: {} },
      0,
      outcome,
    );
  }
  it("keeps the row ok, marks its MNIST column, and states the rule under the table", async () => {
    const fallback = await row(SWIFTSHADER);
    const hardware = await row(HARDWARE);
    expect(fallback.status).toBe("ok");
    expect(statusCell(fallback)).toBe("ok");
    expect(accuracyCell(fallback)).toBe("— (CPU fallback)");
    const results = benchResultsSchema.parse({
      kind: "nnspec.bench",
      formatVersion: 1,
      startedAt: new Date().toISOString(),
      finishedAt: new Date().toISOString(),
      machine: machine(),
      settings: defaults.settings,
      peer: { available: false, reason: "not requested (--no-peer)", version: null },
      entries: [fallback, hardware],
    });
    expect(mainTable(results).rows[0]!.at(-1)).toBe("— (CPU fallback)");
    expect(fallbackNote(results)).toMatch(
      /^Rows webgpu report a CPU fallback adapter .*1 timed repetition after warm-up/,
    );
    expect(fallbackNote({ ...results, entries: [hardware] })).toBeNull();
  });
});
