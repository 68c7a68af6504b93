import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { collectChecks, runChecks, tally } from "@nnspec/conformance";
import { loadBackend } from "@nnspec/conformance/node";
import {
  CNN_CAPABILITIES,
  CNN_PARAMS,
  initBuffers,
  initParameters,
  mulberry32,
  SpecValidationError,
  type Backend,
} from "@nnspec/spec";
import { loadWorkspaceBackend, pytorchCommand } from "../src/workspace-backends.ts";

// The "pytorch" tool backend is backends/pytorch/backend.py loaded through the judge's cmd: loader with the
// training peer's settings (1 thread): these tests check that wiring and that this configuration is correct.
const hasTorch = spawnSync("/usr/bin/python3", ["-c", "import torch"], { stdio: "ignore" }).status === 0;
const golden = fileURLToPath(new URL("../../fixtures/cnn/ties-batch2-seed3.json", import.meta.url));

async function withPytorch<T>(options: Record<string, unknown>, f: (b: Backend) => Promise<T>): Promise<T> {
  const backend = await loadWorkspaceBackend("pytorch", options);
  try {
    return await f(backend);
  } finally {
    await backend.dispose?.();
  }
}

describe("pytorch tool backend: options", () => {
  it("are validated before anything starts: precision float32/float64, threads ≥ 1, onednn a boolean, unknown options refused", async () => {
    await expect(loadWorkspaceBackend("pytorch", { precision: "float16" })).rejects.toBeInstanceOf(SpecValidationError);
    await expect(loadWorkspaceBackend("pytorch", { threads: 0 })).rejects.toBeInstanceOf(SpecValidationError);
    await expect(loadWorkspaceBackend("pytorch", { onednn: "yes" })).rejects.toBeInstanceOf(SpecValidationError);
    await expect(loadWorkspaceBackend("pytorch", { device: "cuda" })).rejects.toThrow(/device/);
  });

  it("a missing python is a load error that names it and the Debian package", async () => {
    await expect(loadWorkspaceBackend("pytorch", { python: "/nonexistent/python3" })).rejects.toThrow(
      /\/nonexistent\/python3[\s\S]*python3-torch/,
    );
  });

  it("the cmd: line quotes its words, so a path with blanks or quotes stays one word", () => {
    expect(pytorchCommand("/opt/my python/it's/python3")).toMatch(
      /^cmd:'\/opt\/my python\/it'\\''s\/python3' '.*\/backends\/pytorch\/backend\.py'$/,
    );
  });
});

describe.runIf(hasTorch)("pytorch tool backend: backends/pytorch with the training peer's settings", () => {
  it("is the judged backend: its manifest, 1 thread by default, the threads option reaching torch", async () => {
    await withPytorch({}, async (b) => {
      expect(b.manifest).toMatchObject({ name: "pytorch", precision: "float32", environment: "process" });
      expect(b.manifest.capabilities).toEqual(expect.arrayContaining([...CNN_CAPABILITIES]));
      expect(b.manifest.device).toMatch(/^PyTorch \d+\.\d+\S* CPU \(oneDNN\), float32, 1 thread\(s\)/);
    });
    await withPytorch({ threads: 2, precision: "float64", onednn: false }, async (b) => {
      expect(b.manifest.precision).toBe("float64");
      expect(b.manifest.device).toMatch(/ CPU, float64, 2 thread\(s\)/);
    });
  });

  it("backend.py checks its own options too (a judge sends them unchecked)", async () => {
    const line = pytorchCommand("/usr/bin/python3");
    await expect(loadBackend(line, { threads: true })).rejects.toThrow(/option "threads": True is not a thread count/);
    await expect(loadBackend(line, { onednn: 1 })).rejects.toThrow(/option "onednn": 1 is not a yes\/no/);
    await expect(loadBackend(line, { cores: 2 })).rejects.toThrow(/unknown option "cores"/);
  });

  it("passes every CNN check of a golden at float32 tolerances", async () => {
    const checks = await collectChecks({ onlyFixtures: [golden], precision: "float32" });
    expect(checks.length).toBeGreaterThan(0);
    const results = await withPytorch({}, (b) => runChecks(b, checks));
    const bad = results.filter((r) => r.status !== "pass");
    expect(bad.map((r) => `${r.id}: ${r.status} ${r.detail}`)).toEqual([]);
    expect(tally(results).passed).toBe(checks.length);
  }, 240_000);

  it("same parameters, batch and dropout masks: the loss, gradients and SGD step agree with reference float64 to float32 rounding", async () => {
    const peer = await loadWorkspaceBackend("pytorch");
    const ref = await loadWorkspaceBackend("reference", { precision: "float64" });
    try {
      const rand = mulberry32(3);
      const n = 8;
      const x = Float32Array.from({ length: n * 784 }, () => rand() * 3 - 0.4);
      const labels = Array.from({ length: n }, (_, i) => (i * 7) % 10);
      const init = { parameters: initParameters(5), buffers: initBuffers() };
      const run = async (b: Backend) => {
        const m = await b.cnn!.create(init);
        const { logProbs } = await m.forward(x, n, { mode: "train", dropout: { seed: 5, step: 2 } });
        const { loss } = await m.backward(labels);
        const grads = await m.gradients();
        await m.step({ lr: 0.05, momentum: 0.9, weightDecay: 5e-4 });
        const params = await m.parameters();
        const state = await m.optimizerState!();
        const evalOut = (await m.forward(x, n, { mode: "eval" })).logProbs;
        await m.dispose();
        return { logProbs, loss, grads, params, state, evalOut };
      };
      const a = await run(peer);
      const b = await run(ref);
      expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-5);
      const worst = (p: Record<string, ArrayLike<number>>, q: Record<string, ArrayLike<number>>, name: string) => {
        let w = 0,
          scale = 0;
        for (let i = 0; i < q[name]!.length; i++) {
          w = Math.max(w, Math.abs(p[name]![i]! - q[name]![i]!));
          scale = Math.max(scale, Math.abs(q[name]![i]!));
        }
        return w / Math.max(scale, 1e-12);
      };
      for (const p of CNN_PARAMS) {
        if (/^conv\d\.bias$/.test(p.name)) continue; // exactly 0 in exact arithmetic (a BatchNorm follows): noise only
        expect(worst(a.grads, b.grads, p.name), p.name).toBeLessThan(1e-4);
        expect(worst(a.params, b.params, p.name), p.name).toBeLessThan(1e-5);
        expect(worst(a.state, b.state, p.name), p.name).toBeLessThan(1e-4);
      }
      for (let i = 0; i < a.evalOut.length; i++) expect(Math.abs(a.evalOut[i]! - b.evalOut[i]!)).toBeLessThan(1e-4);
    } finally {
      await peer.dispose?.();
      await ref.dispose?.();
    }
  });

  it("with a recipe's dropout rates, loss and gradients at float64 agree with reference float64 (backward at the forward's rates)", async () => {
    // float64 on both sides: a backward at the wrong rate is off by a factor, far above rounding.
    const peer = await loadWorkspaceBackend("pytorch", { precision: "float64" });
    const ref = await loadWorkspaceBackend("reference", { precision: "float64" });
    try {
      const rand = mulberry32(4);
      const n = 4;
      const x = Float32Array.from({ length: n * 784 }, () => rand() * 3 - 0.4);
      const labels = Array.from({ length: n }, (_, i) => (i * 3) % 10);
      const run = async (b: Backend) => {
        const m = await b.cnn!.create({ parameters: initParameters(6) });
        await m.forward(x, n, { mode: "train", dropout: { seed: 2, step: 7, rates: [0.5, 0.35, 0.4] } });
        const { loss } = await m.backward(labels);
        const grads = await m.gradients();
        await m.dispose();
        return { loss, grads };
      };
      const a = await run(peer);
      const b = await run(ref);
      expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-12);
      for (const p of CNN_PARAMS) {
        if (/^conv\d\.bias$/.test(p.name)) continue; // exactly 0 in exact arithmetic: noise only
        const g = a.grads[p.name]!,
          r = b.grads[p.name]!;
        let w = 0,
          scale = 0;
        for (let i = 0; i < r.length; i++) {
          w = Math.max(w, Math.abs(g[i]! - r[i]!));
          scale = Math.max(scale, Math.abs(r[i]!));
        }
        expect(w / Math.max(scale, 1e-12), p.name).toBeLessThan(1e-9);
      }
    } finally {
      await peer.dispose?.();
      await ref.dispose?.();
    }
  });

  it("an error inside python is that call's error, and the backend keeps serving", async () => {
    await withPytorch({}, async (b) => {
      const m = await b.cnn!.create({ parameters: initParameters(1) });
      await expect(m.backward([1])).rejects.toThrow(/train-mode forward/);
      await expect(m.forward(new Float32Array(783), 1, { mode: "eval" })).rejects.toThrow(/783 values/);
      const { logProbs } = await m.forward(new Float32Array(784), 1, { mode: "eval" });
      expect(logProbs).toHaveLength(10);
    });
  });
});
