#!/usr/bin/env node
// Training speed at batch 128 of this backend, tfjs-wasm and PyTorch, measured in one session on this machine:
// `rounds` rounds, each running the three train-step benches one after another (rotating the order so a change
// in the machine's load does not always hit the same one); prints every result and the median per contender.
// Usage (from the repository root): node backends/wasm/bench/compare.mjs [--rounds 3] [--reps 5] [--threads 2]
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { loadavg } from "node:os";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    reps: { type: "string", default: "5" },
    threads: { type: "string", default: "2" },
  },
});
const rounds = Number(values.rounds),
  reps = values.reps,
  threads = values.threads;
const tsx = ["pnpm", "exec", "tsx"];
const contenders = {
  wasm: [...tsx, "backends/wasm/bench/train-step.ts", "--reps", reps, "--threads", threads],
  "tfjs-wasm": [...tsx, "backends/tfjs-wasm/bench/train-step.ts", "--reps", reps, "--threads", threads],
  pytorch: ["/usr/bin/python3", "backends/wasm/bench/torch_train_step.py", "--reps", reps, "--threads", threads],
};
const names = Object.keys(contenders);
const results = Object.fromEntries(names.map((n) => [n, []]));
console.log(
  `load average at start: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < names.length; i++) {
    const name = names[(i + r) % names.length];
    const [cmd, ...args] = contenders[name];
    const p = spawnSync(cmd, args, { encoding: "utf8" });
    const line =
      `${p.stdout}${p.stderr}`.split("\n").find((l) => l.includes("images/s")) ??
      `${p.stdout}${p.stderr}`.trim().split("\n").at(-1);
    const m = /→ ([\d.]+) images\/s/.exec(line ?? "");
    if (m) results[name].push(Number(m[1]));
    console.log(`round ${r + 1} ${name}: ${line}`);
  }
}
const med = (a) => (a.length ? [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] : NaN);
const torch = med(results.pytorch);
console.log(
  `load average at end: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
for (const n of names)
  console.log(
    `${n.padEnd(10)} median ${med(results[n]).toFixed(1)} images/s over ${results[n].length} rounds (${results[n].join(", ")}) ×${(med(results[n]) / torch).toFixed(2)} PyTorch`,
  );
