/**
 * Training throughput of the reference CNN: forward + backward + SGD step at batch 128 on random data.
 * Usage: pnpm exec tsx backends/reference/bench/train-step.ts [--precision float32|float64] [--reps 7] [--batch 128] [--threads 1|2]
 */
import { parseArgs } from "node:util";
import { initParameters, mulberry32, TRAIN_BATCH_SIZE } from "@nnspec/spec";
import { createCnnOps, type CnnPrecision } from "../src/cnn/index.ts";

const { values } = parseArgs({
  options: {
    precision: { type: "string", default: "float32" },
    reps: { type: "string", default: "7" },
    batch: { type: "string", default: String(TRAIN_BATCH_SIZE) },
    threads: { type: "string", default: "2" },
  },
});
const precision = values.precision as CnnPrecision;
if (precision !== "float32" && precision !== "float64")
  throw new Error(`--precision must be float32 or float64, got ${values.precision}`);
const reps = Number(values.reps),
  n = Number(values.batch);
if (!(reps >= 1) || !(n >= 1)) throw new Error("--reps and --batch must be positive integers");

const threads = Number(values.threads);
if (threads !== 1 && threads !== 2) throw new Error(`--threads must be 1 or 2, got ${values.threads}`);
const ops = createCnnOps({ precision, threads });
const model = await ops.create({ parameters: initParameters(1) });
const rand = mulberry32(7);
const x = new Float32Array(n * 784).map(() => rand() * 2 - 0.5);
const labels = Array.from({ length: n }, () => Math.floor(rand() * 10));
const sgd = { lr: 0.01, momentum: 0.9, weightDecay: 0 };

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

await once(0); // warm-up: JIT and workspace allocation
await once(1);
const times: number[] = [];
cpuMs = 0;
for (let r = 0; r < reps; r++) times.push(await once(r + 2));
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)]!;
console.log(
  `precision ${precision}, threads ${threads}, batch ${n}, ${reps} reps: median ${median.toFixed(1)} ms/step → ${(n / (median / 1000)).toFixed(1)} images/s (best ${(n / (times[0]! / 1000)).toFixed(1)}); ` +
    `process CPU ${(cpuMs / reps).toFixed(0)} ms/step (all threads; ≈ wall × threads when the cores are free)`,
);
await model.dispose();
