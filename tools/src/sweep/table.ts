import type { SweepSummary } from "./result.ts";

/** The sweep table as printed by `nnspec sweep` (plain text; one row per learning rate). */
export interface TableRowValues {
  lr: number;
  eTotalStart: number;
  eTotalFinal: number;
  stepsToThreshold: number | null;
  divergedAtStep: number | null;
  divergedQuantity: string | null;
}

// Scientific notation keeps the column aligned while E_total spans many decades.
const num = (v: number): string => (Number.isFinite(v) ? v.toExponential(9) : String(v));

export function formatSweepTable(
  rows: readonly TableRowValues[],
  summary: Pick<SweepSummary, "steps" | "threshold">,
): string {
  const header = [
    "η",
    "E_total step 0",
    `E_total step ${summary.steps}`,
    `steps to E_total < ${summary.threshold}`,
    "divergence",
  ];
  const body = rows.map((r) => [
    String(r.lr),
    num(r.eTotalStart),
    num(r.eTotalFinal),
    r.stepsToThreshold === null ? "never" : String(r.stepsToThreshold),
    r.divergedAtStep === null ? "no" : `diverged at step ${r.divergedAtStep} (${r.divergedQuantity})`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const leftAligned = (i: number) => i === 0 || i === header.length - 1;
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (leftAligned(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "─".repeat(w)).join("  "), ...body.map(line)].join("\n");
}
