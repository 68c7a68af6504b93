import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { initParameters } from "@nnspec/spec";
import { trainingKit } from "@nnspec/tfjs-common/testing";
import { createBackend } from "../src/index.ts";

// Small batch: SwiftShader runs every shader on the CPU of a 2-core CI machine.
const backend = await createBackend();
const cnn = backend.cnn!;
const N = 4;
const { x, trainSteps } = trainingKit(N);

describe("tfjs-webgl CNN training in Chromium", () => {
  it("runs on the webgl backend and reports what the textures hold", () => {
    expect(tf.getBackend()).toBe("webgl");
    const f32 = tf.env().getBool("WEBGL_RENDER_FLOAT32_ENABLED");
    expect(backend.manifest.precision).toBe(f32 ? "float32" : "float16");
    expect(backend.manifest.environment).toBe("browser");
    expect(backend.manifest.device).toContain(`WebGL ${tf.env().getNumber("WEBGL_VERSION")}`);
    expect(backend.manifest.device).toContain(f32 ? "float32 textures" : "float16 textures");
    console.log(`tfjs-webgl manifest: ${backend.manifest.precision}; ${backend.manifest.device}`);
  });

  it("runs every kernel of a training step on webgl, none handed to the cpu backend", async () => {
    const model = await cnn.create({ parameters: initParameters(1) });
    const profile = await tf.profile(async () => {
      await trainSteps(model, 1);
    });
    await model.dispose();
    const kernels = new Set(profile.kernelNames);
    expect(kernels.has("Conv2D") || kernels.has("FusedConv2D")).toBe(true);
    // Pooling forward, and its first-max backward (a Step mask; see tfjs-common ops.ts maxPoolGrad).
    expect(kernels.has("MaxPool") && kernels.has("Step")).toBe(true);
    for (const k of kernels) {
      if (k.endsWith("__op")) continue; // op scopes (customGrad wrappers), not kernels
      expect(tf.getKernel(k, "webgl"), `kernel ${k} has no webgl implementation`).toBeDefined();
    }
    expect(tf.env().getBool("WEBGL_CPU_FORWARD")).toBe(false);
    expect(tf.getBackend()).toBe("webgl");
  });

  it("leaks no tensors over ten training steps", async () => {
    const model = await cnn.create({ parameters: initParameters(2) });
    // The first step creates the momentum buffer; an eval forward derives the layer views.
    await trainSteps(model, 1);
    await model.forward(x, N, { mode: "eval" });
    const before = tf.memory().numTensors;
    await trainSteps(model, 10);
    await model.forward(x, N, { mode: "eval", record: true });
    expect(tf.memory().numTensors).toBe(before);
    await model.dispose();
  });

  it("is deterministic under a seed: two runs give bit-identical losses and parameters", async () => {
    const run = async () => {
      const model = await cnn.create({ parameters: initParameters(5) });
      const losses = await trainSteps(model, 3);
      const params = await model.parameters();
      await model.dispose();
      return { losses, params };
    };
    const a = await run(),
      b = await run();
    expect(b.losses).toEqual(a.losses);
    for (const name of Object.keys(a.params)) expect(b.params[name], name).toEqual(a.params[name]);
    expect(a.losses[2]).toBeLessThan(a.losses[0]!); // and it learns the batch
  });

  it("rejects unknown options and precisions it cannot give", async () => {
    await expect(createBackend({ precison: "float32" })).rejects.toThrow(/unknown option\(s\) precison/);
    await expect(createBackend({ precision: "float64" })).rejects.toThrow(/precision float64 is not available/);
  });
});
