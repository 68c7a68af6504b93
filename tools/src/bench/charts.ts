import type { BenchResults } from "@nnspec/spec";
import { renderBarChart, type BarChartInput } from "../plot/bar-chart.ts";
import { renderLineChart, type RenderedChart } from "../plot/line-chart.ts";
import { GROUP_TITLES, num, SPEED_FIGURES } from "./format.ts";

export interface BenchChart {
  readonly name: string;
  readonly title: string;
  readonly chart: RenderedChart;
}

const labelOf = (id: string, kind: string) => (kind === "peer" ? `${id} (peer)` : id);
// Exact agreement (ratio 0) has no place on a log axis: drawn at this floor, labelled with the true value.
const RATIO_FLOOR = 1e-6;

/** Every chart of the report, rendered headless (SVG inlined into report.html, PNG beside it). */
export async function benchCharts(r: BenchResults): Promise<BenchChart[]> {
  const out: BenchChart[] = [];
  for (const f of SPEED_FIGURES) {
    const bars = r.entries.flatMap((e) => {
      const s = e.speed[f.key];
      return s
        ? [{ category: labelOf(e.id, e.kind), value: s.median, lo: s.min, hi: s.max, label: num(s.median) }]
        : [];
    });
    if (bars.length === 0) continue;
    out.push({
      name: `speed-${f.key}`,
      title: f.title,
      chart: await renderBarChart({
        title: f.title,
        subtitle: "median, whiskers min–max; log scale",
        valueTitle: f.title.replace(/ \(.*\)$/, ""),
        scale: "log",
        bars,
      }),
    });
  }

  const ratioBars: BarChartInput["bars"] = r.entries.flatMap((e) =>
    (e.conformance?.groups ?? []).flatMap((g) =>
      g.worstRatio === null
        ? []
        : [
            {
              category: e.id,
              series: GROUP_TITLES[g.group],
              value: Math.max(g.worstRatio, RATIO_FLOOR),
              label: g.worstRatio.toExponential(1),
            },
          ],
    ),
  );
  if (ratioBars.length > 0) {
    out.push({
      name: "accuracy-vs-tolerance",
      title: "Accuracy: worst error as a multiple of the tolerance",
      chart: await renderBarChart({
        title: "Worst error / tolerance, per check group",
        subtitle: [`≤ 1 passes (dashed line); log scale, exact agreement drawn at ${RATIO_FLOOR}`],
        valueTitle: "worst |error| / tolerance",
        scale: "log",
        seriesTitle: "checks",
        bars: ratioBars,
        referenceLines: [{ value: 1, label: "tolerance" }],
      }),
    });
  }

  const trained = r.entries.filter((e) => e.training && e.training.batchLoss.length > 0);
  if (trained.length > 0) {
    out.push({
      name: "training-loss",
      title: "MNIST training loss per step",
      chart: await renderLineChart({
        title: "MNIST training loss per optimizer step",
        subtitle: `batch ${r.settings.batchSize}, ${r.settings.epochs} epoch(s), same subset and seed for every backend`,
        xTitle: "step",
        yTitle: "training loss (NLL)",
        yScale: "log",
        seriesTitle: "backend",
        series: trained.map((e) => ({
          name: labelOf(e.id, e.kind),
          points: e.training!.batchLoss.map((y, i) => ({ x: i + 1, y })),
        })),
      }),
    });
    if (r.settings.epochs > 1) {
      out.push({
        name: "training-accuracy",
        title: "MNIST test accuracy per epoch",
        chart: await renderLineChart({
          title: "MNIST test accuracy after each epoch",
          xTitle: "epoch",
          yTitle: "test accuracy (%)",
          seriesTitle: "backend",
          series: trained.map((e) => ({
            name: labelOf(e.id, e.kind),
            points: e.training!.epochTestAccuracy.map((y, i) => ({ x: i + 1, y: 100 * y })),
          })),
        }),
      });
    }
  }

  const started = r.entries.filter((e) => e.startup);
  if (started.length > 0) {
    out.push({
      name: "startup",
      title: "Time to first result",
      chart: await renderBarChart({
        title: "Time to first result",
        subtitle: "process spawn → first CNN forward (batch 1), backend creation and wasm/kernel init included",
        valueTitle: "seconds",
        bars: started.map((e) => ({
          category: labelOf(e.id, e.kind),
          value: e.startup!.firstResultMs / 1000,
          label: `${(e.startup!.firstResultMs / 1000).toFixed(2)} s`,
        })),
      }),
    });
  }
  const mem = r.entries.filter((e) => e.peakRssBytes !== null);
  if (mem.length > 0) {
    out.push({
      name: "peak-memory",
      title: "Peak memory",
      chart: await renderBarChart({
        title: "Peak resident memory (RSS high-water mark of the backend's process)",
        valueTitle: "MiB",
        bars: mem.map((e) => ({
          category: labelOf(e.id, e.kind),
          value: e.peakRssBytes! / 2 ** 20,
          label: `${(e.peakRssBytes! / 2 ** 20).toFixed(0)} MiB`,
        })),
      }),
    });
  }
  return out;
}
