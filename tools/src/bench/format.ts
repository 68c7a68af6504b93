import { browserReps } from "./browser.ts";
import { FALLBACK_NOTE_PREFIX, FALLBACK_REPS, isCpuFallback, skippedForFallback } from "./fallback.ts";
import { INFERENCE_ONLY, NO_MNIST, stageOf } from "./protocol.ts";
import { BENCH_CHECK_GROUPS, type BenchEntry, type BenchResults, type BenchStats } from "@nnspec/spec";

/** The bench's tables as plain cells: the terminal table, the Markdown scoreboard and the HTML report share them. */

export type SpeedKey = keyof BenchEntry["speed"];
export const SPEED_FIGURES: ReadonlyArray<{ key: SpeedKey; title: string; short: string }> = [
  { key: "net222StepsPerSecond", title: "2-2-2 training steps/s", short: "2-2-2 steps/s" },
  { key: "trainImagesPerSecond", title: "CNN training images/s (batch 128)", short: "train img/s b128" },
  { key: "inferImagesPerSecondBatch1", title: "CNN inference images/s (batch 1)", short: "infer img/s b1" },
  { key: "inferImagesPerSecondBatch128", title: "CNN inference images/s (batch 128)", short: "infer img/s b128" },
];

export const GROUP_TITLES: Record<(typeof BENCH_CHECK_GROUPS)[number], string> = {
  net222: "2-2-2 trajectories",
  "cnn.forward": "CNN forward",
  "cnn.backward": "CNN gradients",
  "cnn.step": "CNN SGD steps",
  "cnn.dropout": "CNN dropout",
};

/** 3 significant digits, no exponent below 1e6. */
export function num(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 1e6) return v.toExponential(2);
  if (Math.abs(v) >= 100) return v.toFixed(0);
  return v.toPrecision(3);
}

/** The PyTorch peer's row, the 1× of every ratio (the ONNX Runtime rows are peers too, measured against it). */
export const PYTORCH_PEER_ID = "pytorch";
export const peerOf = (r: BenchResults): BenchEntry | undefined =>
  r.entries.find((e) => e.kind === "peer" && e.id === PYTORCH_PEER_ID && e.status !== "skipped");

/** Throughput relative to the peer (1 = as fast as PyTorch); null without both figures. */
export function ratioToPeer(r: BenchResults, e: BenchEntry, key: SpeedKey): number | null {
  const peer = peerOf(r)?.speed[key];
  const own = e.speed[key];
  return peer && own && peer.median > 0 ? own.median / peer.median : null;
}

export function statsCell(s: BenchStats | null, ratio: number | null): string {
  if (!s) return "—";
  const range = s.reps > 1 ? ` (${num(s.min)}–${num(s.max)})` : "";
  return `${num(s.median)}${range}${ratio !== null ? ` ×${num(ratio)}` : ""}`;
}

export function ratioCell(worst: number | null, failed: number, ran: number): string {
  if (ran === 0) return "—";
  if (worst === null) return failed > 0 ? "FAIL (non-finite)" : "—";
  return `${worst.toExponential(1)}${worst > 1 ? " FAIL" : ""}`;
}

export const mib = (bytes: number | null) => (bytes === null ? "—" : `${(bytes / 2 ** 20).toFixed(0)} MiB`);
/** Peak memory; a browser row's is Chromium's (page renderer + GPU process), labelled so it is not read as a process's. */
export const memoryCell = (e: BenchEntry) =>
  `${mib(e.peakRssBytes)}${e.peakRssBytes !== null && e.memoryKind === "chromium-renderer-gpu" ? " (Chromium)" : ""}`;

/** What the memory and start-up columns mean for browser rows; null when the results have none. */
export function browserNote(r: BenchResults): string | null {
  if (!r.entries.some((e) => e.kind === "browser")) return null;
  const reps = r.settings.reps;
  const b = browserReps({ train: reps, infer128: reps, infer1: Math.max(10, 4 * reps), net222: reps });
  return (
    "Rows `*-chromium` run in headless Chromium (vitest browser mode, SwiftShader WebGL, the same measuring code as Node rows; " +
    `${b.train} repetitions, batch-1 inference ${b.infer1}): first result counts from spawning vitest (Vite + Chromium start-up and the backend's ` +
    "wasm/WebGL initialisation included); peak RSS (Chromium) is the RSS high-water mark of the page's renderer process plus Chromium's GPU process; MNIST training is not run in the page."
  );
}

/** A software adapter (SwiftShader, lavapipe…) runs "GPU" code on the CPU: its speeds say nothing about a GPU. */
export const onCpuFallback = (e: BenchEntry) => isCpuFallback(e.device);

/** A row that ran the reduced budget of a CPU fallback adapter (its worker said so in a note). */
export const reducedForFallback = (e: BenchEntry) => e.notes.some((n) => n.startsWith(FALLBACK_NOTE_PREFIX));

/** A row whose MNIST training was not run because its adapter is a CPU fallback. */
export const mnistSkippedForFallback = (e: BenchEntry) => e.phases.some(skippedForFallback);

/** The rule for CPU fallback rows, stated under the table; null when no row ran on one. */
export function fallbackNote(r: BenchResults): string | null {
  const rows = r.entries.filter((e) => reducedForFallback(e) || mnistSkippedForFallback(e)).map((e) => e.id);
  if (rows.length === 0) return null;
  return (
    `Rows ${rows.join(", ")} report a CPU fallback adapter in their device line (software such as SwiftShader runs the ` +
    "GPU kernels on the CPU: WebGPU trains the CNN at a few images/s or less there), so they ran a reduced budget: " +
    `${FALLBACK_REPS.train} timed repetition after warm-up for CNN training and for inference at batch 128, ${FALLBACK_REPS.infer1} at batch 1 ` +
    "(the 2-2-2 figure keeps its budget), and no MNIST training (the row's phase detail gives the time it would take at the measured speed). " +
    "A backend on a hardware adapter gets the full budget."
  );
}

/** Every row's device as its manifest names it (adapter, threads, build), with CPU fallbacks said plainly. */
export function deviceNote(r: BenchResults): string {
  const line = (e: BenchEntry) =>
    `${e.id}: ${e.device || e.specifier}${onCpuFallback(e) ? " — **CPU fallback, not a GPU**" : ""}`;
  const fallbacks = r.entries.filter(onCpuFallback).map((e) => e.id);
  const warning = fallbacks.length
    ? `Rows ${fallbacks.join(", ")} ran on a software (CPU) fallback adapter: their speeds say nothing about a real GPU. `
    : "";
  return `${warning}Devices: ${r.entries.map(line).join("; ")}.`;
}

/** What the ONNX Runtime rows are and how their numerics compare with PyTorch; null when the results have none. */
export function inferencePeerNote(r: BenchResults): string | null {
  const rows = r.entries.filter((e) => e.kind === "peer" && e.specifier.startsWith("onnxruntime-"));
  if (rows.length === 0) return null;
  const line = (e: BenchEntry) => {
    const a = e.agreement;
    const threads = typeof e.options.threads === "number" ? `, ${e.options.threads} threads` : "";
    if (!a)
      return `${e.id} (${e.specifier}${threads}): ${e.status}${e.failure ? ` — ${e.failure.message.split("\n")[0]}` : ""}`;
    return (
      `${e.id} (${e.device || e.specifier}): log-probs of ${a.images} images vs ${a.reference}, worst err/tol ${a.worstRatio === null ? "non-finite" : a.worstRatio.toExponential(1)}` +
      `${a.worstAbsolute === null ? "" : `, |Δ| ≤ ${a.worstAbsolute.toExponential(1)}`} — ${a.pass ? "agrees" : "DISAGREES"} within the ${a.precision} tolerance`
    );
  };
  return (
    "Inference peers: the same CNN with the same initial weights, exported to ONNX by PyTorch (fixtures/cnn-generator/export_onnx.py, eval mode, " +
    "dynamic batch), run by ONNX Runtime with as many threads as the PyTorch peer; inference only (no training figures). " +
    `${rows.map(line).join("; ")}.`
  );
}

export const secs = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? "—" : `${(ms / 1000).toFixed(2)} s`;

/** A Node row (or the peer) whose MNIST training was skipped for lack of data: its row must say so. */
export const missedMnist = (e: BenchEntry) =>
  e.kind !== "browser" &&
  e.phases.some((p) => p.name === "mnist-train" && p.status === "skipped" && p.detail === NO_MNIST);

/** "ok", "ok, no MNIST", or "failed (checks)" — a failure names its stage: load, checks, speed or training. */
export function statusCell(e: BenchEntry): string {
  if (e.status === "ok") return missedMnist(e) ? "ok, no MNIST" : "ok";
  return `${e.status}${e.failure ? ` (${stageOf(e.failure.phase)})` : ""}`;
}

/** An inference-only row (the ONNX Runtime peers): its training phases were skipped as such. */
export const inferenceOnly = (e: BenchEntry) =>
  e.phases.some((p) => p.name === "train-speed" && p.status === "skipped" && p.detail === INFERENCE_ONLY);

export function conformanceCell(e: BenchEntry): string {
  const c = e.conformance;
  if (e.agreement) return `vs PyTorch: ${e.agreement.pass ? "agrees" : "DISAGREES"}`;
  if (!c) return e.kind === "peer" ? "peer" : "—";
  const ni = c.notImplemented > 0 ? `, ${c.notImplemented} n/i` : "";
  return `${c.passed}/${c.checks}${c.failed ? `, ${c.failed} FAIL` : ""}${ni}`;
}

export function accuracyCell(e: BenchEntry): string {
  const t = e.training;
  return t
    ? `${(100 * t.testAccuracy).toFixed(2)}%`
    : missedMnist(e)
      ? "— (no MNIST)"
      : mnistSkippedForFallback(e)
        ? "— (CPU fallback)"
        : inferenceOnly(e)
          ? `— (${INFERENCE_ONLY})`
          : "—";
}

/** The main table: one row per entry. */
export function mainTable(r: BenchResults): { header: string[]; rows: string[][] } {
  const header = [
    "backend",
    "precision",
    "status",
    "checks passed",
    "worst err/tol",
    ...SPEED_FIGURES.map((f) => f.short),
    "first result",
    "peak RSS",
    "MNIST test acc",
  ];
  const rows = r.entries.map((e) => [
    e.kind === "peer" ? `${e.id} (peer)` : e.id,
    e.precision || "—",
    statusCell(e),
    conformanceCell(e),
    e.conformance
      ? ratioCell(e.conformance.worstRatio, e.conformance.failed, e.conformance.passed + e.conformance.failed)
      : e.agreement
        ? `${ratioCell(e.agreement.worstRatio, e.agreement.pass ? 0 : 1, 1)} (vs PyTorch)`
        : "—",
    ...SPEED_FIGURES.map((f) =>
      statsCell(e.speed[f.key], e.id === PYTORCH_PEER_ID && e.kind === "peer" ? null : ratioToPeer(r, e, f.key)),
    ),
    secs(e.startup?.firstResultMs),
    memoryCell(e),
    accuracyCell(e),
  ]);
  return { header, rows };
}

/** Worst error / tolerance per check group (the accuracy half of the scoreboard). */
export function accuracyTable(r: BenchResults): { header: string[]; rows: string[][] } {
  const withChecks = r.entries.filter((e) => e.conformance);
  const header = ["backend", ...BENCH_CHECK_GROUPS.map((g) => GROUP_TITLES[g])];
  const rows = withChecks.map((e) => [
    e.id,
    ...BENCH_CHECK_GROUPS.map((g) => {
      const x = e.conformance!.groups.find((y) => y.group === g);
      if (!x) return "—";
      if (x.passed + x.failed === 0) return x.notImplemented ? "n/i" : "—";
      return ratioCell(x.worstRatio, x.failed, x.passed + x.failed);
    }),
  ]);
  return { header, rows };
}

/** Plain-text table with padded columns (terminal). */
export function textTable(t: { header: string[]; rows: string[][] }): string {
  const widths = t.header.map((h, i) => Math.max(h.length, ...t.rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(t.header), widths.map((w) => "─".repeat(w)).join("  "), ...t.rows.map(line)].join("\n");
}

export function markdownTable(t: { header: string[]; rows: string[][] }): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  return [
    `| ${t.header.map(esc).join(" | ")} |`,
    `|${t.header.map(() => "---").join("|")}|`,
    ...t.rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ].join("\n");
}

export function machineLine(r: BenchResults): string {
  const m = r.machine;
  return `${m.cpuModel}, ${m.cores} cores, ${(m.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB RAM, Node ${m.node}, ${m.platform}/${m.arch}, load ${m.loadAverage.toFixed(2)} at start; ${r.startedAt.slice(0, 10)}`;
}

export function settingsLine(r: BenchResults): string {
  const s = r.settings;
  const data = s.limit === null ? "all 60000 training images" : `${s.limit} training images`;
  const test = s.testLimit === null ? "all 10000 test images" : `${s.testLimit} test images`;
  // The training budget is stated only where some row trained on it.
  const trained = r.entries.some((e) => e.training);
  const budget = trained
    ? `MNIST ${s.epochs} epoch(s) on ${data}, evaluated on ${test}; batch ${s.batchSize}, OneCycle max lr ${s.maxLr}, seed ${s.seed}`
    : `no MNIST training ran (${
        r.entries.some(missedMnist)
          ? "no MNIST data: set MNIST_DIR or --data-dir"
          : r.entries.some(mnistSkippedForFallback)
            ? "CPU fallback adapters skip it"
            : "no row trained"
      }); seed ${s.seed}`;
  return (
    `mode ${s.mode}: ${budget}; ` +
    `speeds are medians of ${s.reps} timed repetitions (batch-1 inference: ${Math.max(10, 4 * s.reps)}; min–max in brackets) after warm-up; ×N = throughput relative to the PyTorch peer.`
  );
}
