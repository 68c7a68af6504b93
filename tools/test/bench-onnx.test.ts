import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchResultsSchema, CNN_PARAM_COUNT, initParameters, type BenchEntry } from "@nnspec/spec";
import {
  exportOnnx,
  onnxCheckSchema,
  onnxSummary,
  specParametersIn,
  type ExportedModel,
} from "../src/bench/onnx-model.ts";
import {
  entryOf,
  notStartedOutcome,
  ONNX_PEER_ENTRY,
  PEER_THREADS,
  probeTorch,
  PYTHON,
} from "../src/bench/run-bench.ts";
import { benchSettings, parsePeers, PEER_IDS } from "../src/bench/plan.ts";
import { runWorker } from "../src/bench/spawn-worker.ts";
import { mainTable, statusCell } from "../src/bench/format.ts";
import type { BenchJob } from "../src/bench/protocol.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const bin = join(repoRoot, "tools/bin/nnspec.js");
const torch = probeTorch();
const quick = benchSettings({ quick: true, seed: 1, out: "x", timeoutS: 60, peer: true });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nnspec-bench-onnx-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** One ONNX Runtime peer process on `model`, as the bench runs it; returns its row. */
async function runPeer(
  runtime: "onnxruntime-node" | "onnxruntime-web",
  model: { model: string; check: string },
  options: Record<string, unknown> = {},
): Promise<BenchEntry> {
  const id = runtime === "onnxruntime-node" ? "ort-node" : "ort-web";
  const spawnedAt = Date.now();
  const job: BenchJob = {
    id,
    specifier: runtime,
    options: { runtime, threads: PEER_THREADS, ...options },
    settings: quick.settings,
    fixtures: [],
    mnistDir: null,
    peerDataFile: null,
    spawnedAt,
    reps: quick.reps,
    net222TargetMs: quick.net222TargetMs,
    onnx: model,
  };
  const jobFile = join(dir, `${id}-${spawnedAt}.job.json`);
  await writeFile(jobFile, JSON.stringify(job));
  const outcome = await runWorker({
    command: process.execPath,
    args: [ONNX_PEER_ENTRY, jobFile],
    timeoutSeconds: 60,
    spawnedAt,
  });
  return entryOf({ id, kind: "peer", specifier: runtime, options: job.options }, spawnedAt, outcome);
}

describe.runIf(torch.available)("the spec CNN exported to ONNX and run by ONNX Runtime", () => {
  let exported: ExportedModel;
  beforeAll(async () => {
    const params = join(dir, "params.json");
    await writeFile(
      params,
      JSON.stringify({
        parameters: Object.fromEntries(Object.entries(initParameters(1)).map(([k, v]) => [k, Array.from(v)])),
      }),
    );
    exported = await exportOnnx({ python: PYTHON, outDir: dir, parametersFile: params, timeoutSeconds: 60 });
  }, 70_000);

  it("exports the golden generator's network: 19,178 parameters under the spec's names and shapes, eval-mode operators", () => {
    expect(CNN_PARAM_COUNT).toBe(19_178);
    expect(exported.info.parameters).toBe(19_178);
    const s = onnxSummary(readFileSync(exported.model));
    expect(s.producer).toBe("pytorch");
    expect(s.opset).toBe(13);
    expect(specParametersIn(s)).toEqual({ count: 19_178, missing: [], misshapen: [] });
    expect(new Set(s.ops)).toEqual(
      new Set(["Conv", "BatchNormalization", "Relu", "MaxPool", "ReduceMean", "Gemm", "LogSoftmax", "Identity"]),
    );
    expect(s.ops.filter((o) => o === "Conv")).toHaveLength(9);
    // Eval mode: no Dropout node survives.
    expect(s.ops).not.toContain("Dropout");
    const check = onnxCheckSchema.parse(JSON.parse(readFileSync(exported.check, "utf8")));
    expect(check.reference).toMatch(/^PyTorch .* float32/);
  });

  it("onnxruntime-node and onnxruntime-web (wasm) load it, agree with PyTorch float32 on a batch and measure inference", async () => {
    const files = { model: exported.model, check: exported.check };
    const rows = await Promise.all([runPeer("onnxruntime-node", files), runPeer("onnxruntime-web", files)]);
    for (const r of rows) {
      expect(r.status, `${r.id}: ${r.failure?.message}`).toBe("ok");
      expect(r.agreement).toMatchObject({ pass: true, quantity: "logProbs", images: 8, precision: "float32" });
      expect(r.agreement!.worstRatio!).toBeLessThan(0.1); // float32 rounding only, far inside the tolerance
      expect(r.speed.inferImagesPerSecondBatch1!.median).toBeGreaterThan(0);
      expect(r.speed.inferImagesPerSecondBatch128!.median).toBeGreaterThan(0);
      expect(r.speed.trainImagesPerSecond).toBeNull();
      expect(r.phases.find((p) => p.name === "train-speed")).toMatchObject({
        status: "skipped",
        detail: "inference only",
      });
      expect(r.notes.join("\n")).toMatch(/worst err\/tol .* \(float32 tolerance\)/);
      expect(r.startup!.firstResultMs).toBeGreaterThan(0);
    }
    expect(rows[0]!.device).toMatch(/onnxruntime-node .*native CPU, 2 intra-op threads/);
    expect(rows[1]!.device).toMatch(/onnxruntime-web .*wasm \(SIMD, threads\), 2 threads/);
  }, 60_000);

  it("a runtime whose log-probs disagree with PyTorch beyond the tolerance fails its checks, naming the phase and the worst element", async () => {
    const check = onnxCheckSchema.parse(JSON.parse(readFileSync(exported.check, "utf8")));
    const bad = join(dir, "bad.check.json");
    await writeFile(
      bad,
      JSON.stringify({ ...check, logProbs: check.logProbs.map((v, i) => (i === 13 ? v + 1e-2 : v)) }),
    );
    const r = await runPeer("onnxruntime-node", { model: exported.model, check: bad });
    expect(r.status).toBe("failed");
    expect(r.failure!.phase).toBe("conformance");
    expect(r.failure!.message).toMatch(/disagree with PyTorch .* image 1, class 3/);
    expect(r.agreement!.pass).toBe(false);
    expect(statusCell(r)).toBe("failed (checks)");
    // It still measured its speed: a numerics failure marks the row, it does not end it.
    expect(r.speed.inferImagesPerSecondBatch128).not.toBeNull();
  }, 30_000);
});

describe("inference peer rows that cannot run say why", () => {
  it("--peers: default all, a subset in canonical order, unknown or repeated names refused, --no-peer none", () => {
    expect(parsePeers({ peer: true })).toEqual([...PEER_IDS]);
    expect(parsePeers({ peer: true, peers: "ort-web, pytorch" })).toEqual(["pytorch", "ort-web"]);
    expect(parsePeers({ peer: false, peers: "ort-web" })).toEqual([]);
    expect(() => parsePeers({ peer: true, peers: "ort-gpu" })).toThrow(/unknown peer "ort-gpu"/);
    expect(() => parsePeers({ peer: true, peers: "ort-node,ort-node" })).toThrow(/listed twice/);
  });

  it("a missing runtime or a failed export becomes a row (skipped / failed in load), not a crash", async () => {
    const skipped = entryOf(
      { id: "ort-web", kind: "peer", specifier: "onnxruntime-web", options: {} },
      Date.now(),
      notStartedOutcome("skipped", "onnxruntime-web is not installed"),
    );
    expect(skipped).toMatchObject({
      status: "skipped",
      failure: { phase: "load", message: "onnxruntime-web is not installed" },
    });
    expect(statusCell(skipped)).toBe("skipped (load)");
    const failed = entryOf(
      { id: "ort-node", kind: "peer", specifier: "onnxruntime-node", options: {} },
      Date.now(),
      notStartedOutcome("failed", "ONNX export exited with code 1: boom"),
    );
    expect(failed).toMatchObject({ status: "failed", failure: { phase: "load" } });
    // A peer that dies before reporting a phase (a bad job file) is a failed row, not an "ok" one.
    const died = await runPeer(
      "onnxruntime-node",
      { model: join(dir, "none.onnx"), check: join(dir, "none.json") },
      { threads: 0 },
    );
    expect(died).toMatchObject({ status: "failed", failure: { phase: "load" } });
    expect(died.failure!.message).toMatch(/threads/);
    await expect(
      exportOnnx({ python: "/nonexistent/python3", outDir: dir, parametersFile: "x", timeoutSeconds: 5 }),
    ).rejects.toThrow(/cannot run \/nonexistent\/python3/);
    const failing = join(dir, "failing_export.py");
    await writeFile(failing, "import sys\nraise SystemExit('export_onnx.py: unknown parameter names [\\'x\\']')\n");
    await expect(
      exportOnnx({ python: PYTHON, outDir: dir, parametersFile: "x", timeoutSeconds: 20, script: failing }),
    ).rejects.toThrow(/ONNX export exited with code 1: export_onnx.py: unknown parameter names/);
  });
});

describe.runIf(torch.available)("nnspec bench --quick with the inference peers", () => {
  it("writes the PyTorch and both ONNX Runtime rows to results.json (spec schema), speeds shown relative to PyTorch", async () => {
    // A 2-2-2-only backend keeps the run short: the peers are what is tested here.
    const spec = pathToFileURL(join(repoRoot, "spec/src/index.ts")).href;
    const tiny = join(dir, "tiny-backend.mjs");
    await writeFile(
      tiny,
      `import { forward } from ${JSON.stringify(spec)};
export async function createBackend() {
  return { manifest: { name: "tiny", version: "0.0.0", precision: "float64", environment: "node", device: "spec formulas", capabilities: ["net222.forward"] },
    net222: { forward: async (c) => forward(c) } };
}
`,
    );
    const out = join(dir, "bench");
    const run = await new Promise<{ code: number; stdout: string; stderr: string }>((ok) => {
      execFile(
        process.execPath,
        [
          bin,
          "bench",
          "--quick",
          "--backends",
          tiny,
          "--peers",
          "pytorch,ort-node,ort-web",
          "--out",
          out,
          "--timeout-s",
          "60",
        ],
        { cwd: repoRoot, env: { ...process.env, NO_COLOR: "1", MNIST_DIR: dir }, timeout: 110_000, maxBuffer: 1 << 24 },
        (err, stdout, stderr) => ok({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
      );
    });
    const results = benchResultsSchema.parse(JSON.parse(await readFile(join(out, "results.json"), "utf8")));
    expect(results.entries.map((e) => e.id)).toEqual(["tiny-backend", "pytorch", "ort-node", "ort-web"]);
    const [, pytorch, node, web] = results.entries;
    for (const e of [pytorch!, node!, web!])
      expect(e.status, `${e.id}: ${e.failure?.message}\n${run.stderr}`).toBe("ok");
    expect(node!.options).toEqual({ runtime: "onnxruntime-node", threads: 2 });
    expect(web!.options).toEqual({ runtime: "onnxruntime-web", threads: 2 });
    expect(node!.notes[0]).toMatch(/^model: 19178 parameters, ONNX opset 13, exported by PyTorch/);
    for (const e of [node!, web!]) expect(e.agreement!.pass).toBe(true);
    const table = mainTable(results);
    const cell = (e: BenchEntry, col: string) => table.rows[results.entries.indexOf(e)]![table.header.indexOf(col)]!;
    const shown = Number(/×([\d.e+-]+)$/.exec(cell(web!, "infer img/s b128"))?.[1]);
    const ratio = web!.speed.inferImagesPerSecondBatch128!.median / pytorch!.speed.inferImagesPerSecondBatch128!.median;
    expect(Math.abs(shown - ratio) / ratio).toBeLessThan(0.01);
    expect(cell(node!, "train img/s b128")).toBe("—");
    expect(cell(node!, "MNIST test acc")).toBe("— (inference only)");
    expect(cell(node!, "checks passed")).toBe("vs PyTorch: agrees");
    expect(cell(pytorch!, "infer img/s b128")).not.toMatch(/×/);
    const md = await readFile(join(out, "scoreboard.md"), "utf8");
    expect(md).toMatch(/\| ort-web \(peer\) \| float32 \| ok \| vs PyTorch: agrees \|/);
    expect(md).toMatch(/Inference peers: .*ort-node .*agrees within the float32 tolerance/);
  }, 120_000);
});
