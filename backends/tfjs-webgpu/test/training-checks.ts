import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { initParameters, type Backend } from "@nnspec/spec";
import { trainingKit } from "@nnspec/tfjs-common/testing";
import { createBackend } from "../src/index.ts";

/**
 * The tfjs-webgpu checks beyond the conformance suite, shared by the Node and Chromium test files: what the manifest
 * says about the adapter, every kernel of a training step on webgpu, no leaks, determinism. Small batch: SwiftShader
 * runs every shader on the CPU of a 2-core CI machine.
 */
export function describeTfjsWebgpu(where: "node" | "browser"): void {
  const N = 4;
  const { x, trainSteps } = trainingKit(N);
  let backend: Backend;

  describe(`tfjs-webgpu (${where})`, () => {
    it("runs on tfjs's webgpu backend and names the adapter in the manifest, saying plainly if it is a CPU fallback", async () => {
      backend = await createBackend();
      const m = backend.manifest;
      expect(tf.getBackend()).toBe("webgpu");
      expect(m.environment).toBe(where);
      expect(m.precision).toBe("float32");
      expect(m.device).toMatch(/^tfjs 4\.22\.0 webgpu, WebGPU \S+\/\S+/);
      expect(m.device).toMatch(/CPU fallback adapter|hardware adapter/);
      if (/swiftshader/i.test(m.device)) expect(m.device).toContain("CPU fallback adapter");
      console.log(`tfjs-webgpu manifest (${where}): ${m.device}`);
    });

    it("runs every kernel of a training step on webgpu, none handed to the cpu backend", async () => {
      const model = await backend.cnn!.create({ parameters: initParameters(1) });
      const profile = await tf.profile(async () => {
        await trainSteps(model, 1);
      });
      await model.dispose();
      const kernels = new Set(profile.kernelNames);
      expect(kernels.has("Conv2D") || kernels.has("FusedConv2D")).toBe(true);
      expect(kernels.has("MaxPool") && kernels.has("Step")).toBe(true);
      for (const k of kernels) {
        if (k.endsWith("__op")) continue;
        expect(tf.getKernel(k, "webgpu"), `kernel ${k} has no webgpu implementation`).toBeDefined();
      }
      expect(tf.env().getBool("WEBGPU_CPU_FORWARD")).toBe(false);
      expect(Object.keys(tf.engine().registry)).not.toContain("cpu");
    });

    it("leaks no tensors over a training step and is deterministic under a seed", async () => {
      // Run A: two steps, counting tensors around the second (the first creates the momentum buffer; an eval forward
      // re-derives the layer views). Run B: one step, whose result must equal run A's first, bit for bit.
      const a = await backend.cnn!.create({ parameters: initParameters(5) });
      const [lossA] = await trainSteps(a, 1);
      const paramsA = await a.parameters();
      await a.forward(x, N, { mode: "eval" });
      const before = tf.memory().numTensors;
      await trainSteps(a, 1);
      await a.forward(x, N, { mode: "eval" });
      expect(tf.memory().numTensors).toBe(before);
      await a.dispose();
      const b = await backend.cnn!.create({ parameters: initParameters(5) });
      const [lossB] = await trainSteps(b, 1);
      const paramsB = await b.parameters();
      await b.dispose();
      expect(lossB).toBe(lossA);
      for (const name of Object.keys(paramsA)) expect(paramsB[name], name).toEqual(paramsA[name]);
    }, 300_000);

    it("rejects unknown options and precisions it cannot give, in one line", async () => {
      await expect(createBackend({ precison: "float32" } as never)).rejects.toThrow(
        /^tfjs-webgpu backend: unknown option "precison"$/,
      );
      await expect(createBackend({ precision: "float64" } as never)).rejects.toThrow(
        /option "precision": "float64" is not offered/,
      );
    });
  });
}
