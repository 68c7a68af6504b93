import type { StepRecord } from "@nnspec/spec";
import type { LineChartInput } from "../plot/line-chart.ts";
import type { RunAnalysis } from "./analyze.ts";

/** Error curves as chart inputs; log y because the interesting part is the orders of magnitude. */

/** Points up to (not including) the divergence step: past it the values are meaningless. */
function curve(records: readonly StepRecord[], a: RunAnalysis, pick: (r: StepRecord) => number) {
  return records.slice(0, a.divergedAtStep ?? records.length).map((r) => ({ x: r.step, y: pick(r) }));
}

const thresholdNote = (threshold: number) => `dashed line: E_total = ${threshold} (converged below it)`;

function divergenceNote(a: RunAnalysis): string {
  return a.divergedAtStep === null ? "" : `diverged at step ${a.divergedAtStep} (${a.divergedQuantity})`;
}

/** One learning rate: E_total with its two parts E1, E2. */
export function runChart(
  lr: number,
  records: readonly StepRecord[],
  analysis: RunAnalysis,
  backendName: string,
  threshold: number,
): LineChartInput {
  const subtitle = [
    `backend ${backendName}, ${records.length - 1} steps`,
    thresholdNote(threshold),
    divergenceNote(analysis),
  ].filter(Boolean);
  return {
    title: `2-2-2 network: error vs step, η = ${lr}`,
    subtitle,
    xTitle: "step",
    yTitle: "error (log scale)",
    yScale: "log",
    seriesTitle: "quantity",
    xDomain: [0, records.length - 1],
    referenceLines: [{ y: threshold }],
    series: [
      { name: "E_total", points: curve(records, analysis, (r) => r.forward.E_total) },
      { name: "E1", points: curve(records, analysis, (r) => r.forward.E1) },
      { name: "E2", points: curve(records, analysis, (r) => r.forward.E2) },
    ],
  };
}

/** All learning rates on one chart, one E_total curve each. */
export function combinedChart(
  runs: readonly { lr: number; records: readonly StepRecord[]; analysis: RunAnalysis }[],
  steps: number,
  backendName: string,
  threshold: number,
): LineChartInput {
  const diverged = runs
    .filter((r) => r.analysis.divergedAtStep !== null)
    .map((r) => `η = ${r.lr} at step ${r.analysis.divergedAtStep}`);
  const subtitle = [
    `backend ${backendName}, ${steps} steps`,
    thresholdNote(threshold),
    diverged.length ? `diverged: ${diverged.join(", ")}` : "",
  ].filter(Boolean);
  return {
    title: "2-2-2 network: total error vs step for each learning rate η",
    subtitle,
    xTitle: "step",
    yTitle: "E_total (log scale)",
    yScale: "log",
    seriesTitle: "learning rate η",
    xDomain: [0, steps],
    referenceLines: [{ y: threshold }],
    series: runs.map((r) => ({
      name: `η = ${r.lr}`,
      points: curve(r.records, r.analysis, (rec) => rec.forward.E_total),
    })),
  };
}
