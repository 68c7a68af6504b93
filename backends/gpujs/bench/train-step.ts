/**
 * Training throughput of the gpu.js CNN: forward (with dropout) + backward + SGD step at batch 128 on random data.
 * Usage: pnpm exec tsx backends/gpujs/bench/train-step.ts [--mode gpu|webasm|cpu|...] [--async] [--reps 5] [--batch 128]
 */
import { parseArgs } from "node:util";
import { initParameters, mulberry32, TRAIN_BATCH_SIZE } from "@nnspec/spec";
import { createBackend, GPUJS_MODES } from "../src/index.ts";

const { values } = parseArgs({
  options: {
    mode: { type: "string", default: "gpu" },
    reps: { type: "string", default: "5" },
    batch: { type: "string", default: String(TRAIN_BATCH_SIZE) },
    async: { type: "boolean", default: false },
  },
});
const mode = values.mode;
if (!(GPUJS_MODES as readonly string[]).includes(mode))
  throw new Error(`--mode must be one of ${GPUJS_MODES.join(", ")}, got ${mode}`);
const reps = Number(values.reps),
  n = Number(values.batch);
if (!(Number.isInteger(reps) && reps >= 1) || !(Number.isInteger(n) && n >= 1))
  throw new Error("--reps and --batch must be positive integers");

const backend = await createBackend({ mode, async: values.async });
const model = await backend.cnn!.create({ parameters: initParameters(1) });
const rand = mulberry32(7);
const x = new Float32Array(n * 784).map(() => rand() * 2 - 0.5);
const labels = Array.from({ length: n }, () => Math.floor(rand() * 10));
const sgd = { lr: 0.01, momentum: 0.9, weightDecay: 0 };

async function once(step: number): Promise<number> {
  const t0 = performance.now();
  await model.forward(x, n, { mode: "train", dropout: { seed: 1, step } });
  await model.backward(labels);
  await model.step(sgd);
  return performance.now() - t0;
}

const warm = await once(0); // warm-up: kernel compilation (each geometry builds once)
const times: number[] = [];
for (let r = 0; r < reps; r++) times.push(await once(r + 1));
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)]!;
console.log(
  `${backend.manifest.device}, batch ${n}, ${reps} reps after a ${warm.toFixed(0)} ms warm-up step: median ${median.toFixed(0)} ms/step → ` +
    `${(n / (median / 1000)).toFixed(1)} images/s (best ${(n / (times[0]! / 1000)).toFixed(1)})`,
);
await model.dispose();
await backend.dispose?.();
