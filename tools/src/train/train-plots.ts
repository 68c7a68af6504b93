import { join } from "node:path";
import { renderLineChart, writeChart } from "../plot/line-chart.ts";
import type { RunRecord } from "./run-record.ts";

/** Loss and accuracy curves of a run, as `<dir>/loss.{png,svg}` and `<dir>/accuracy.{png,svg}`. */
export async function writeTrainPlots(dir: string, r: RunRecord): Promise<string[]> {
  const subtitle = `${r.backend.name} (${r.backend.precision}) · ${r.trainImages} train / ${r.testImages} test images · seed ${r.seed}`;
  const perEpoch = (f: (e: RunRecord["epochs"][number]) => number) => r.epochs.map((e) => ({ x: e.epoch, y: f(e) }));
  // Per-step loss, x in epochs; thinned to ≤ 2000 points so the SVG stays small.
  const stride = Math.max(1, Math.ceil(r.batchLoss.length / 2000));
  const steps = r.batchLoss.flatMap((y, i) => (i % stride === 0 ? [{ x: (i + 1) / r.stepsPerEpoch, y }] : []));
  const loss = await renderLineChart({
    title: "Training and test loss",
    subtitle,
    xTitle: "epoch",
    yTitle: "NLL loss",
    yScale: "log",
    seriesTitle: "",
    series: [
      { name: "train batch", points: steps },
      { name: "train epoch", points: perEpoch((e) => e.trainLoss) },
      { name: "test", points: perEpoch((e) => e.testLoss) },
    ],
  });
  const accuracy = await renderLineChart({
    title: "Accuracy (train: running, dropout on)",
    subtitle,
    xTitle: "epoch",
    yTitle: "accuracy (%)",
    seriesTitle: "",
    series: [
      { name: "train", points: perEpoch((e) => 100 * e.trainAccuracy) },
      { name: "test", points: perEpoch((e) => 100 * e.testAccuracy) },
    ],
  });
  const a = await writeChart(join(dir, "loss"), loss);
  const b = await writeChart(join(dir, "accuracy"), accuracy);
  return [a.png, a.svg, b.png, b.svg];
}
