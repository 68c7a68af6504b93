import { join } from "node:path";
import { renderLineChart, writeChart, type LineSeries } from "../plot/line-chart.ts";
import type { EpochRecord } from "../train/run-record.ts";
import type { LoadedRun } from "./load.ts";
import { BAR, TARGET } from "./table.ts";

/** Curves per run, or per (backend, recipe) as the mean over its runs; "auto" = runs while there are ≤ 10. */
export type SeriesMode = "runs" | "groups" | "auto";

interface Quantity {
  readonly file: string;
  readonly title: string;
  readonly yTitle: string;
  readonly value: (e: EpochRecord) => number;
  readonly refs: { y: number; label: string }[];
}

const QUANTITIES: readonly Quantity[] = [
  {
    file: "test-error",
    title: "Test error per epoch (log scale)",
    yTitle: "test error (%) = 100 − accuracy",
    value: (e) => 100 * (1 - e.testAccuracy),
    refs: [
      { y: 100 * (1 - BAR), label: "99.4 %" },
      { y: 100 * (1 - TARGET), label: "99.6 %" },
    ],
  },
  {
    file: "test-loss",
    title: "Test loss per epoch (log scale)",
    yTitle: "test NLL loss",
    value: (e) => e.testLoss,
    refs: [],
  },
  {
    file: "train-loss",
    title: "Training loss per epoch (log scale; running mean, dropout on)",
    yTitle: "train NLL loss",
    value: (e) => e.trainLoss,
    refs: [],
  },
];

/** Ticks that read on a log axis at the scale of these runs: 1-2-3-5 steps per decade within the data. */
export function logTicks(values: readonly number[]): number[] {
  const v = values.filter((x) => Number.isFinite(x) && x > 0);
  if (v.length === 0) return [];
  const lo = Math.min(...v),
    hi = Math.max(...v);
  const ticks: number[] = [];
  for (let d = Math.floor(Math.log10(lo)); d <= Math.ceil(Math.log10(hi)); d++) {
    for (const m of [1, 1.5, 2, 3, 4, 5, 6, 8]) {
      const t = Number((m * 10 ** d).toPrecision(3));
      if (t >= lo / 1.25 && t <= hi * 1.25) ticks.push(t);
    }
  }
  // Dense when the data span little (0.4 … 0.7 %), thinner when they span decades.
  if (ticks.length > 12)
    return ticks.filter((t) => [1, 2, 5].includes(Number((t / 10 ** Math.floor(Math.log10(t))).toPrecision(3))));
  return ticks;
}

export const curvePerRun = (runs: readonly LoadedRun[], mode: SeriesMode) =>
  mode === "runs" || (mode === "auto" && runs.length <= 10);

export function seriesFor(runs: readonly LoadedRun[], q: Quantity, mode: SeriesMode): LineSeries[] {
  if (curvePerRun(runs, mode))
    return runs.map((r) => ({ name: r.label, points: r.record.epochs.map((e) => ({ x: e.epoch, y: q.value(e) })) }));
  const groups = new Map<string, LoadedRun[]>();
  for (const r of runs) {
    const k = `${r.backend} · ${r.recipe}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(r);
  }
  return [...groups.entries()].map(([name, rs]) => {
    const maxEpoch = Math.max(...rs.map((r) => r.record.epochs.length));
    const points = [];
    for (let epoch = 1; epoch <= maxEpoch; epoch++) {
      const ys = rs.flatMap((r) => r.record.epochs.filter((e) => e.epoch === epoch).map(q.value));
      if (ys.length) points.push({ x: epoch, y: ys.reduce((a, b) => a + b, 0) / ys.length });
    }
    return { name: `${name} (mean of ${rs.length})`, points };
  });
}

/** One chart per quantity (PNG + SVG) in `dir`; returns the written paths. */
export async function writeCompareCharts(
  dir: string,
  runs: readonly LoadedRun[],
  mode: SeriesMode = "auto",
  title?: string,
): Promise<string[]> {
  const written: string[] = [];
  const maxEpoch = Math.max(1, ...runs.map((r) => r.record.epochs.at(-1)?.epoch ?? 1));
  for (const q of QUANTITIES) {
    const series = seriesFor(runs, q, mode);
    const ys = series.flatMap((s) => s.points.map((p) => p.y)).filter((y) => Number.isFinite(y) && y > 0);
    const refYs = q.refs.map((r) => r.y);
    const perRun = curvePerRun(runs, mode);
    const chart = await renderLineChart({
      title: title ? `${title}: ${q.title.charAt(0).toLowerCase()}${q.title.slice(1)}` : q.title,
      subtitle: [
        `${runs.length} run(s)${perRun ? "" : "; one curve per backend and recipe, the mean over its runs"}`,
        ...(q.refs.length ? ["dashed: 99.4 % (the course's bar) and 99.6 % (the target)"] : []),
      ],
      xTitle: "epoch",
      yTitle: q.yTitle,
      yScale: "log",
      seriesTitle: "",
      series,
      yTicks: logTicks([...ys, ...q.refs.map((r) => r.y)]),
      ...(ys.length
        ? { yDomain: [Math.min(...ys, ...refYs) / 1.1, Math.max(...ys, ...refYs) * 1.1] as [number, number] }
        : {}),
      legendOrient: "bottom",
      legendLabelLimit: 900,
      yFormat: "~g",
      xDomain: [1, maxEpoch],
      referenceLines: q.refs,
      width: 720,
      height: 400,
    });
    const paths = await writeChart(join(dir, q.file), chart);
    written.push(paths.png, paths.svg);
  }
  return written;
}
