import { describe, expect, it } from "vitest";
import { CAPABILITIES, initParameters, mulberry32, SpecValidationError, type Backend } from "@nnspec/spec";
import { createBackend, gpuOf } from "../src/index.ts";

/**
 * The webgpu backend's checks beyond the conformance suite, shared by the Node and Chromium test files: the manifest
 * names the adapter, a training step is two submits and reads back only what the contract returns, training is
 * deterministic and learns, batch sizes can change, options are validated. Small batches: SwiftShader runs every
 * shader on the CPU of a 2-core CI machine.
 */
export function describeWebgpu(where: "node" | "browser", backend: Backend): void {
  const N = 3;
  const rand = mulberry32(11);
  const x = Float32Array.from({ length: N * 784 }, () => rand() * 2 - 0.5);
  const labels = [3, 1, 4];
  const sgd = { lr: 0.05, momentum: 0.9, weightDecay: 5e-4 };

  describe(`webgpu backend (${where})`, () => {
    it("claims the whole contract in float32 and names the adapter, saying plainly if it is a CPU fallback", async () => {
      const m = backend.manifest;
      expect(m.environment).toBe(where);
      expect(m.precision).toBe("float32");
      expect(m.capabilities).toEqual([...CAPABILITIES]);
      expect(m.device).toMatch(/^WGSL compute shaders, WebGPU \S+\/\S+/);
      expect(m.device).toMatch(/CPU fallback adapter|hardware adapter/);
      if (/swiftshader/i.test(m.device)) expect(m.device).toContain("CPU fallback adapter");
      console.log(`webgpu manifest (${where}): ${m.device}`);
    });

    it("records a training step into two submits (forward with the previous SGD update, backward) and reads back only the results", async () => {
      const gpu = gpuOf(backend)!;
      const reads: number[] = [];
      const read = gpu.read.bind(gpu);
      gpu.read = (parts) => {
        reads.push(parts.reduce((a, p) => a + p.elements, 0));
        return read(parts);
      };
      try {
        const model = await backend.cnn!.create({ parameters: initParameters(1) });
        const step = async (s: number) => {
          await model.forward(x, N, { mode: "train", dropout: { seed: 3, step: s } });
          await model.backward(labels);
          await model.step(sgd);
        };
        await step(0);
        const before = gpu.submits;
        reads.length = 0;
        await step(1);
        expect(gpu.submits - before).toBe(2);
        expect(reads).toEqual([N * 10, 1]); // log-probabilities, then the loss
        await model.dispose();
      } finally {
        gpu.read = read;
      }
    });

    it("is deterministic under a seed and learns a batch", async () => {
      const run = async () => {
        const model = await backend.cnn!.create({ parameters: initParameters(5) });
        const losses: number[] = [];
        for (let s = 0; s < 2; s++) {
          await model.forward(x, N, { mode: "train", dropout: { seed: 3, step: s } });
          losses.push((await model.backward(labels)).loss);
          await model.step(sgd);
        }
        const params = await model.parameters();
        await model.dispose();
        return { losses, params };
      };
      const a = await run(),
        b = await run();
      expect(b.losses).toEqual(a.losses);
      for (const name of Object.keys(a.params)) expect(b.params[name], name).toEqual(a.params[name]);
      expect(a.losses[1]).toBeLessThan(a.losses[0]!);
    });

    it("serves changing batch sizes from the same model (eval results do not depend on what ran before)", async () => {
      const model = await backend.cnn!.create({ parameters: initParameters(7) });
      const one = (await model.forward(x.subarray(0, 784), 1, { mode: "eval" })).logProbs;
      await model.forward(x, N, { mode: "train" });
      const three = (await model.forward(x, N, { mode: "eval" })).logProbs;
      await model.forward(x.subarray(0, 2 * 784), 2, { mode: "eval" });
      const again = (await model.forward(x.subarray(0, 784), 1, { mode: "eval" })).logProbs;
      await model.dispose();
      // Train mode moved the running statistics: eval after it differs; the first row of batch 3 matches batch 1 after it.
      expect(Array.from(again)).toEqual(Array.from(three.subarray(0, 10)));
      expect(Array.from(again)).not.toEqual(Array.from(one));
    });

    it("refuses misuse with clear errors", async () => {
      const model = await backend.cnn!.create({ parameters: initParameters(1) });
      await expect(model.backward(labels)).rejects.toThrow(/backward\(\) needs a train-mode forward\(\)/);
      await model.forward(x, N, { mode: "train" });
      await expect(model.backward([3, 1, 10])).rejects.toThrow(/labels\[2\] = 10 is not a class in 0\.\.9/);
      await expect(model.forward(x, 2, { mode: "eval" })).rejects.toThrow(/input has 2352 values, expected 2×784/);
      await model.dispose();
      await expect(model.parameters()).rejects.toThrow(/used after dispose/);
    });

    it("rejects unknown options and precisions it cannot give, in one line", async () => {
      const e = await createBackend({ precison: "float32" } as never).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(SpecValidationError);
      expect((e as Error).message).toBe(`webgpu backend: unknown option "precison"`);
      await expect(createBackend({ precision: "float64" } as never)).rejects.toThrow(
        /^webgpu backend: option "precision": "float64" is not offered/,
      );
    });
  });
}
