import type { StepRecord } from "@nnspec/spec";

/** What one training run says about convergence: start/final error, when it got below threshold, divergence. */
export interface RunAnalysis {
  eTotalStart: number;
  eTotalFinal: number;
  /** First step whose E_total is below the threshold, before any divergence; null = never. */
  stepsToThreshold: number | null;
  /** First step at which any weight, forward value or gradient is NaN or ±Infinity; null = never. */
  divergedAtStep: number | null;
  /** The first non-finite quantity at that step, e.g. "forward.h1 = -Infinity". */
  divergedQuantity: string | null;
}

function firstNonFinite(r: StepRecord): string | null {
  for (const group of ["weights", "forward", "gradients"] as const)
    for (const [name, v] of Object.entries(r[group])) if (!Number.isFinite(v)) return `${group}.${name} = ${v}`;
  return null;
}

export function analyzeRun(records: readonly StepRecord[], threshold: number): RunAnalysis {
  const first = records[0],
    last = records[records.length - 1];
  if (!first || !last) throw new Error("analyzeRun: a run has at least one record");
  let stepsToThreshold: number | null = null,
    divergedAtStep: number | null = null,
    divergedQuantity: string | null = null;
  for (const r of records) {
    divergedQuantity = firstNonFinite(r);
    if (divergedQuantity !== null) {
      divergedAtStep = r.step;
      break; // from here on the numbers mean nothing (a saturated net can even show E_total = 0)
    }
    if (stepsToThreshold === null && r.forward.E_total < threshold) stepsToThreshold = r.step;
  }
  return {
    eTotalStart: first.forward.E_total,
    eTotalFinal: last.forward.E_total,
    stepsToThreshold,
    divergedAtStep,
    divergedQuantity,
  };
}
