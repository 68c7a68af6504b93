import type { Cell, MutantResult, MutantsRun } from "./run.ts";

const MARK: Record<Cell, string> = { caught: "✗", passed: "·", "not-claimed": "–" };

/** Short column heads: "2-2-2 gradients", "CNN backward". */
export function groupHead(group: string): string {
  const [family, part] = group.split(".") as [string, string];
  return `${family === "net222" ? "2-2-2" : family === "cnn" ? "CNN" : family} ${part}`;
}

const oneLine = (s: string, max: number) => {
  const t = s.replace(/\s+/g, " ");
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
};

function row(r: MutantResult, groups: readonly string[]): string {
  const cells = groups.map((g) => MARK[r.cells[g] ?? "not-claimed"]);
  const first = r.firstCatch
    ? `\`${r.firstCatch.check}\``
    : r.control
      ? "— (control: passes every check)"
      : "**SURVIVES**";
  return `| ${r.control ? `*${r.id}*` : r.id} | ${cells.join(" | ")} | ${first} |`;
}

/** The kill matrix as a Markdown table (readable in a terminal, pasted as-is into the README). */
export function formatKillMatrix(run: MutantsRun): string {
  const head = `| mutant (${run.precision}) | ${run.groups.map(groupHead).join(" | ")} | first check that catches it |`;
  const rule = `|---|${run.groups.map(() => ":-:").join("|")}|---|`;
  return [head, rule, ...run.results.map((r) => row(r, run.groups))].join("\n");
}

/** One line per mutant as the run goes. */
export function formatProgress(r: MutantResult): string {
  const verdict = r.control
    ? r.failed === 0
      ? `control passes all ${r.ran} checks`
      : `CONTROL FAILS ${r.failed} of ${r.ran} checks`
    : r.failed > 0
      ? "caught"
      : "SURVIVES";
  const why = r.firstCatch ? ` — ${r.firstCatch.check}: ${oneLine(r.firstCatch.detail, 140)}` : "";
  return `  ${r.id.padEnd(26)} ${verdict.padEnd(10)} ${(r.ms / 1000).toFixed(1).padStart(5)} s${why}`;
}

export function formatSummary(run: MutantsRun): string {
  const mutants = run.results.filter((r) => !r.control);
  const caught = mutants.length - run.survivors.length;
  const lines = [
    `${run.precision}: ${caught}/${mutants.length} mutants caught${run.survivors.length ? `; SURVIVING: ${run.survivors.join(", ")}` : ""}; controls ${run.falseAlarms.length ? `FAIL: ${run.falseAlarms.join(", ")}` : "pass every check"} (${(run.ms / 1000).toFixed(1)} s)`,
  ];
  return lines.join("\n");
}

export const LEGEND =
  "✗ a check of the group fails (the mutant is caught there) · · every check of the group passes · – capability not claimed";
