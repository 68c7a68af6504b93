#!/usr/bin/env node
// Per-kernel throughput of the convolutions on one thread, in multiply-adds per second: each kernel of assembly/
// (compiled here with the package's asc flags into a temporary file) runs many short trials, interleaved, and the
// best trial counts — robust on a shared machine, where a long run measures the neighbours. "direct-equivalent"
// counts 2304 multiply-adds per output pixel whatever the algorithm, so Winograd's rate is comparable with direct.
// Usage (from the repository root): node backends/wasm/bench/kernels.mjs [--trials 40]
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ASC_FLAGS } from "../scripts/build-wasm.mjs";

const { values } = parseArgs({ options: { trials: { type: "string", default: "40" } } });
const trials = Number(values.trials);
const { default: asc } = await import("assemblyscript/asc");
const dir = mkdtempSync(join(tmpdir(), "nnspec-wasm-kernels-"));
const file = join(dir, "kernels.wasm");
const flags = ASC_FLAGS.filter(
  (f, i, a) =>
    !["--sharedMemory", "--initialMemory", "--maximumMemory"].includes(f) &&
    !["--initialMemory", "--maximumMemory"].includes(a[i - 1]),
);
const { error } = await asc.main([new URL("./kernels-entry.ts", import.meta.url).pathname, "-o", file, ...flags], {
  stdout: { write: () => true },
  stderr: process.stderr,
});
if (error) throw error;
const memory = new WebAssembly.Memory({ initial: 2048 });
const ex = (await WebAssembly.instantiate(readFileSync(file), { env: { memory, now: () => performance.now() } }))
  .instance.exports;
rmSync(dir, { recursive: true, force: true });

const f32 = new Float32Array(memory.buffer);
for (let i = 0; i < f32.length; i++) f32[i] = ((i * 7919) % 1009) / 1009 - 0.5;
const MB = 1 << 20,
  n = 8;
const w = MB,
  U = MB + 16384,
  bias = MB + 65536,
  g = MB + 131072,
  dU = MB + 196608,
  work = MB + 262144,
  inp = 2 * MB,
  out = 16 * MB;
ex.transformFilter(w, U);

const rows = [];
for (const S of [28, 14, 7]) {
  const reps = Math.max(1, Math.round((3 * 784) / (S * S)));
  const kernels = {
    "direct forward / input gradient": () => ex.direct(inp, S, w, bias, out, n, reps),
    "direct filter gradient": () => ex.directFilter(inp, S, out, g, n, reps),
    ...(S % 2 === 0
      ? {
          "Winograd forward / input gradient": () => ex.winograd(inp, S, U, bias, out, work, n, reps),
          "Winograd filter gradient": () => ex.winogradGrad(inp, S, out, g, dU, work, n, reps),
        }
      : {}),
  };
  const best = Object.fromEntries(Object.keys(kernels).map((k) => [k, Infinity]));
  for (const run of Object.values(kernels)) run(); // tier up to TurboFan
  for (let t = 0; t < trials; t++) {
    for (const [k, run] of Object.entries(kernels)) {
      const t0 = performance.now();
      run();
      best[k] = Math.min(best[k], performance.now() - t0);
    }
  }
  for (const [k, ms] of Object.entries(best))
    rows.push({ S, kernel: k, gmacs: (n * reps * S * S * 2304) / (ms / 1000) / 1e9 });
}
console.log("| layer size | kernel | direct-equivalent GMAC/s (one thread) |");
console.log("|---|---|---|");
for (const r of rows) console.log(`| ${r.S}×${r.S} | ${r.kernel} | ${r.gmacs.toFixed(1)} |`);
