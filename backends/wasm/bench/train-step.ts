/**
 * Training throughput of the wasm backend's CNN: forward (with dropout) + backward + SGD step at batch 128 on
 * random data; median over the timed reps after two warm-up steps.
 * Usage: pnpm exec tsx backends/wasm/bench/train-step.ts [--reps 7] [--batch 128] [--threads N]
 */
import { parseArgs } from "node:util";
import { initParameters, mulberry32, TRAIN_BATCH_SIZE } from "@nnspec/spec";
import { createBackend } from "../src/index.ts";
import type { WasmCnnModel } from "../src/cnn.ts";

const { values } = parseArgs({
  options: {
    reps: { type: "string", default: "7" },
    batch: { type: "string", default: String(TRAIN_BATCH_SIZE) },
    threads: { type: "string" },
    profile: { type: "boolean", default: false },
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

let cpuMs = 0;
async function once(step: number): Promise<number> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await model.forward(x, n, { mode: "train", dropout: { seed: 1, step } });
  await model.backward(labels);
  await model.step(sgd);
  const c = process.cpuUsage(c0);
  cpuMs += (c.user + c.system) / 1000;
  return performance.now() - t0;
}

await once(0);
await once(1);
cpuMs = 0;
const times: number[] = [];
for (let r = 0; r < reps; r++) times.push(await once(r + 2));
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)]!;
console.log(
  `${backend.manifest.device}; batch ${n}, ${reps} reps: median ${median.toFixed(1)} ms/step → ${(n / (median / 1000)).toFixed(1)} images/s (best ${(n / (times[0]! / 1000)).toFixed(1)}); ` +
    `process CPU ${(cpuMs / reps).toFixed(0)} ms/step (all threads; ≈ wall × threads when the cores are free)`,
);

if (values.profile) {
  // Thread 0's wall time per kernel over `reps` more steps (the SGD step is timed here, on the main thread).
  const m = model as WasmCnnModel;
  m.setProfiling(true);
  let sgdMs = 0,
    totalMs = 0;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await model.forward(x, n, { mode: "train", dropout: { seed: 1, step: r } });
    await model.backward(labels);
    const t1 = performance.now();
    await model.step(sgd);
    sgdMs += performance.now() - t1;
    totalMs += performance.now() - t0;
  }
  m.setProfiling(false);
  const rows = Object.entries(m.profile()).map(([k, ms]) => [k, ms / reps] as const);
  rows.push(["SGD step + weight packing (main thread)", sgdMs / reps]);
  const inKernels = rows.reduce((a, [, ms]) => a + ms, 0);
  console.log(
    `per step (mean of ${reps}): ${(totalMs / reps).toFixed(1)} ms wall, ${inKernels.toFixed(1)} ms in kernels`,
  );
  for (const [k, ms] of rows.sort((a, b) => b[1] - a[1]))
    console.log(`${ms.toFixed(2).padStart(8)} ms ${((100 * ms) / inKernels).toFixed(1).padStart(5)}%  ${k}`);
}
await model.dispose();
