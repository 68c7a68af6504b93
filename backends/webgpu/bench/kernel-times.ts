// Times each kernel of a CNN training step on this machine's adapter, one submit per dispatch (diagnostic only):
//   pnpm exec tsx backends/webgpu/bench/kernel-times.ts [batch]
import { initParameters, mulberry32 } from "@nnspec/spec";
import { createBackend } from "../src/index.ts";
import { Gpu } from "../src/gpu.ts";

const n = Number(process.argv[2] ?? 2);
const backend = await createBackend();
console.log(backend.manifest.device);
const times = new Map<string, { ms: number; count: number }>();
let flushes: Promise<void> = Promise.resolve();
let timing = false;
const orig = Gpu.prototype.dispatch;
Gpu.prototype.dispatch = function (this: Gpu, d) {
  if (!timing) return orig.call(this, d);
  flushes = flushes.then(async () => {
    await this.flush();
    const t0 = performance.now();
    orig.call(this, d);
    await this.flush();
    const e = times.get(d.pipeline) ?? { ms: 0, count: 0 };
    e.ms += performance.now() - t0;
    e.count++;
    times.set(d.pipeline, e);
  });
};
const rand = mulberry32(3);
const x = Float32Array.from({ length: n * 784 }, () => rand() * 2 - 0.5);
const labels = Array.from({ length: n }, (_, i) => i % 10);
const model = await backend.cnn!.create({ parameters: initParameters(1) });
await model.forward(x, n, { mode: "train" });
await model.backward(labels);
await model.step({ lr: 0.01, momentum: 0.9, weightDecay: 0 });
timing = true;
// Dispatches are recorded synchronously then timed one by one in the chain; reads happen after.
const t0 = performance.now();
const fwd = model.forward(x, n, { mode: "train", dropout: { seed: 1, step: 0 } });
await flushes;
await fwd;
const t1 = performance.now();
const bwd = model.backward(labels);
await flushes;
await bwd;
const t2 = performance.now();
console.log(
  `forward ${(t1 - t0).toFixed(0)} ms, backward ${(t2 - t1).toFixed(0)} ms (batch ${n}, one submit per kernel)`,
);
for (const [k, v] of [...times].sort((a, b) => b[1].ms - a[1].ms))
  console.log(`${k.padEnd(24)} ${v.ms.toFixed(1).padStart(9)} ms over ${v.count}`);
await model.dispose();
await backend.dispose?.();
