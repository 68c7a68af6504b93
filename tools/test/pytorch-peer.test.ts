import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import {
  CNN_PARAMS,
  DROPOUT_LAYERS,
  dropoutKeeps,
  initBuffers,
  initParameters,
  mulberry32,
  SpecValidationError,
} from "@nnspec/spec";
import { loadWorkspaceBackend } from "../src/workspace-backends.ts";
import { createBackend, dropoutMaskBytes } from "../src/peer/pytorch-backend.ts";

const hasTorch = spawnSync("/usr/bin/python3", ["-c", "import torch"], { stdio: "ignore" }).status === 0;

describe("PyTorch peer: what is computed in TypeScript", () => {
  it("dropout masks follow the contract's rule (dropoutKeeps) element by element", () => {
    for (const l of DROPOUT_LAYERS) {
      const mask = dropoutMaskBytes(9, l.index, 4, l.p, 2 * 16 * 14 * 14);
      for (let i = 0; i < mask.length; i++)
        if (mask[i] !== (dropoutKeeps(9, l.index, 4, i, l.p) ? 1 : 0)) throw new Error(`layer ${l.index} element ${i}`);
      const kept = mask.reduce((a, b) => a + b, 0) / mask.length;
      expect(Math.abs(kept - (1 - l.p))).toBeLessThan(0.03);
    }
  });

  it("options are validated: float32 only, threads ≥ 1, unknown options refused", async () => {
    await expect(createBackend({ precision: "float64" })).rejects.toThrow(/float32 only/);
    await expect(createBackend({ threads: 0 })).rejects.toBeInstanceOf(SpecValidationError);
    await expect(createBackend({ device: "cuda" })).rejects.toThrow(/device/);
  });

  it("a missing python is a load error that names it and the Debian package", async () => {
    await expect(createBackend({ python: "/nonexistent/python3" })).rejects.toThrow(
      /\/nonexistent\/python3.*python3-torch/,
    );
  });
});

describe.runIf(hasTorch)("PyTorch peer: the same step as the reference backend", () => {
  it("same parameters, batch and dropout masks: the loss, gradients and SGD step agree with reference float64 to float32 rounding", async () => {
    const peer = await createBackend({});
    const ref = await loadWorkspaceBackend("reference", { precision: "float64" });
    try {
      expect(peer.manifest).toMatchObject({ name: "pytorch", precision: "float32" });
      const rand = mulberry32(3);
      const n = 8;
      const x = Float32Array.from({ length: n * 784 }, () => rand() * 3 - 0.4);
      const labels = Array.from({ length: n }, (_, i) => (i * 7) % 10);
      const init = { parameters: initParameters(5), buffers: initBuffers() };
      const run = async (b: typeof peer) => {
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

  it("an error inside python is one line naming it, and the peer keeps serving", async () => {
    const peer = await createBackend({});
    try {
      const m = await peer.cnn!.create({ parameters: initParameters(1) });
      await expect(m.backward([1])).rejects.toThrow(/0 labels|1 labels for a batch of 0/);
      await expect(m.gradients()).rejects.toThrow(/PyTorch peer: .*/);
      const { logProbs } = await m.forward(new Float32Array(784), 1, { mode: "eval" });
      expect(logProbs).toHaveLength(10);
    } finally {
      await peer.dispose?.();
    }
  });
});
