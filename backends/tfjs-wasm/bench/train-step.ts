/**
 * Training throughput of the tfjs-wasm CNN: forward (with dropout) + backward + SGD step at batch 128 on random
 * data; median over the timed reps after two warm-up steps.
 * Usage: pnpm exec tsx backends/tfjs-wasm/bench/train-step.ts [--reps 7] [--batch 128] [--threads N] [--profile]
 *   --profile also prints the kernels of one step by total time (tf.profile; wasm kernel times are wall time).
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { initParameters, mulberry32, TRAIN_BATCH_SIZE } from "@nnspec/spec";
import { createBackend } from "../src/index.ts";

const { values } = parseArgs({
  options: {
    reps: { type: "string", default: "7" },
    batch: { type: "string", default: String(TRAIN_BATCH_SIZE) },
    profile: { type: "boolean", default: false },
    threads: { type: "string" },
  },
});
const reps = Number(values.reps),
  n = Number(values.batch);
if (!Number.isInteger(reps) || reps < 1 || !Number.isInteger(n) || n < 1)
  throw new Error("--reps and --batch must be positive integers");

const backend = await createBackend(values.threads !== undefined ? { threads: Number(values.threads) } : {});
const model = await backend.cnn!.create({ parameters: initParameters(1) });
const rand = mulberry32(7);
const x = Float32Array.from({ length: n * 784 }, () => rand() * 2 - 0.5);
const labels = Array.from({ length: n }, () => Math.floor(rand() * 10));
const sgd = { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 };

async function once(step: number): Promise<number> {
  const t0 = performance.now();
  await model.forward(x, n, { mode: "train", dropout: { seed: 1, step } });
  await model.backward(labels);
  await model.step(sgd);
  return performance.now() - t0;
}

await once(0);
await once(1);
const times: number[] = [];
for (let r = 0; r < reps; r++) times.push(await once(r + 2));
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)]!;
console.log(
  `${backend.manifest.device}; batch ${n}, ${reps} reps: median ${median.toFixed(1)} ms/step → ${(n / (median / 1000)).toFixed(1)} images/s (best ${(n / (times[0]! / 1000)).toFixed(1)})`,
);

if (values.profile) {
  const info = await tf.profile(async () => {
    await once(reps + 2);
  });
  const byKernel = new Map<string, { ms: number; count: number }>();
  for (const k of info.kernels) {
    const ms =
      typeof k.kernelTimeMs === "number"
        ? k.kernelTimeMs
        : ((await k.kernelTimeMs) as unknown as { error?: string })
          ? 0
          : 0;
    const key = `${k.name} ${JSON.stringify(k.inputShapes)}`;
    const e = byKernel.get(key) ?? { ms: 0, count: 0 };
    e.ms += ms;
    e.count++;
    byKernel.set(key, e);
  }
  const total = [...byKernel.values()].reduce((a, e) => a + e.ms, 0);
  console.log(`profiled step: ${info.kernels.length} kernels, ${total.toFixed(1)} ms in kernels`);
  for (const [k, e] of [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25))
    console.log(`${e.ms.toFixed(1).padStart(8)} ms ${String(e.count).padStart(3)}× ${k}`);
}
await model.dispose();
