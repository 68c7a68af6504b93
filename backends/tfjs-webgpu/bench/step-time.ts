// Median time of a CNN training step (forward, backward, SGD) on tfjs-webgpu, batch N (diagnostic only):
//   pnpm exec tsx backends/tfjs-webgpu/bench/step-time.ts [batch] [FLAG=value …]   (tfjs env flags to try)
import * as tf from "@tensorflow/tfjs";
import { initParameters } from "@nnspec/spec";
import { trainingKit } from "@nnspec/tfjs-common/testing";
import { createBackend } from "../src/index.ts";

const n = Number(process.argv[2] ?? 4);
const backend = await createBackend();
const flags = process.argv.slice(3).map((a) => a.split("=") as [string, string]);
for (const [k, v] of flags) tf.env().set(k, v === "true" ? true : v === "false" ? false : Number(v));
const { trainSteps } = trainingKit(n);
const model = await backend.cnn!.create({ parameters: initParameters(1) });
await trainSteps(model, 1);
const times: number[] = [];
for (let i = 0; i < Number(process.env.STEPS ?? 3); i++) {
  const t0 = performance.now();
  await trainSteps(model, 1);
  times.push(performance.now() - t0);
}
console.log(
  `batch ${n}, ${flags.map((f) => f.join("=")).join(" ") || "defaults"}: steps ${times.map((t) => t.toFixed(0)).join(", ")} ms`,
);
await model.dispose();
