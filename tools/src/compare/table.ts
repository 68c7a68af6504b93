import type { LoadedRun } from "./load.ts";

/** The course's bar: test accuracy ≥ 99.4 %. */
export const BAR = 0.994;
/** The issue's target for a 3-seed mean. */
export const TARGET = 0.996;

export interface RunRow {
  readonly label: string;
  readonly path: string;
  readonly backend: string;
  readonly recipe: string;
  readonly seed: number;
  readonly epochs: number;
  readonly plannedEpochs: number;
  /** complete, diverged, interrupted; "short" when a complete-looking record has fewer epochs than its recipe. */
  readonly status: string;
  readonly final: number | null;
  readonly best: { readonly accuracy: number; readonly epoch: number } | null;
  /** First epoch (1-based) at ≥ 99.4 %, null if never. */
  readonly firstAtBar: number | null;
  readonly wallSeconds: number;
  readonly imagesPerSecond: number;
  readonly testImages: number;
}

export interface GroupRow {
  readonly backend: string;
  readonly recipe: string;
  /** Complete runs (the statistics use only these) and all runs. */
  readonly complete: readonly RunRow[];
  readonly all: readonly RunRow[];
  readonly finalMean: number | null;
  readonly finalMin: number | null;
  readonly finalMax: number | null;
  readonly bestMean: number | null;
  readonly wallMean: number | null;
  readonly imagesPerSecondMean: number | null;
}

export function runRow(r: LoadedRun): RunRow {
  const e = r.record.epochs;
  const last = e.at(-1);
  let best: RunRow["best"] = null;
  for (const x of e) if (!best || x.testAccuracy > best.accuracy) best = { accuracy: x.testAccuracy, epoch: x.epoch };
  const status = r.record.status === "complete" && e.length < r.record.recipe.epochs ? "short" : r.record.status;
  return {
    label: r.label,
    path: r.path,
    backend: r.backend,
    recipe: r.recipe,
    seed: r.record.seed,
    epochs: e.length,
    plannedEpochs: r.record.recipe.epochs,
    status,
    final: last ? last.testAccuracy : null,
    best,
    firstAtBar: e.find((x) => x.testAccuracy >= BAR)?.epoch ?? null,
    wallSeconds: r.record.wallSeconds,
    imagesPerSecond: r.record.imagesPerSecond,
    testImages: r.record.testImages,
  };
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/** One row per (backend, recipe), in order of first appearance; statistics over the complete runs. */
export function groupRows(rows: readonly RunRow[]): GroupRow[] {
  const groups = new Map<string, RunRow[]>();
  for (const r of rows) {
    const k = `${r.backend}\u0000${r.recipe}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(r);
  }
  return [...groups.values()].map((all) => {
    const complete = all.filter((r) => r.status === "complete" && r.final !== null);
    const finals = complete.map((r) => r.final!);
    return {
      backend: all[0]!.backend,
      recipe: all[0]!.recipe,
      complete,
      all,
      finalMean: mean(finals),
      finalMin: finals.length ? Math.min(...finals) : null,
      finalMax: finals.length ? Math.max(...finals) : null,
      bestMean: mean(complete.map((r) => r.best!.accuracy)),
      wallMean: mean(complete.map((r) => r.wallSeconds)),
      imagesPerSecondMean: mean(complete.map((r) => r.imagesPerSecond)),
    };
  });
}

export const pct = (v: number | null, digits = 2) => (v === null ? "—" : `${(100 * v).toFixed(digits)} %`);

export function duration(s: number | null): string {
  if (s === null) return "—";
  if (s < 90) return `${s.toFixed(0)} s`;
  if (s < 90 * 60) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(2)} h`;
}

const rate = (v: number | null) => (v === null ? "—" : v >= 100 ? v.toFixed(0) : v.toPrecision(3));

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  return [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

/** The per-(backend, recipe) table: final mean ± half its range (min–max), best, first epoch ≥ 99.4 %, time, speed. */
export function groupTable(groups: readonly GroupRow[]): string {
  return table(
    [
      "backend",
      "recipe",
      "seeds",
      "final test acc, mean ± ½ range",
      "min – max",
      "best (mean)",
      "first epoch ≥ 99.4 % (per seed)",
      "wall time (mean)",
      "img/s (mean)",
    ],
    groups.map((g) => {
      const half = g.finalMax !== null && g.finalMin !== null ? (100 * (g.finalMax - g.finalMin)) / 2 : null;
      const seeds = g.all.map((r) => `${r.seed}${r.status === "complete" ? "" : ` (${r.status})`}`).join(", ");
      return [
        g.backend,
        g.recipe,
        seeds,
        g.finalMean === null ? "—" : `**${(100 * g.finalMean).toFixed(3)} %** ± ${half!.toFixed(3)}`,
        g.finalMin === null ? "—" : `${pct(g.finalMin)} – ${pct(g.finalMax)}`,
        pct(g.bestMean, 3),
        g.complete.map((r) => r.firstAtBar ?? "never").join(", ") || "—",
        duration(g.wallMean),
        rate(g.imagesPerSecondMean),
      ];
    }),
  );
}

/** One row per run. */
export function runTable(rows: readonly RunRow[]): string {
  return table(
    [
      "backend",
      "recipe",
      "seed",
      "epochs",
      "status",
      "final",
      "best (epoch)",
      "first ≥ 99.4 %",
      "wall time",
      "img/s",
      "file",
    ],
    rows.map((r) => [
      r.backend,
      r.recipe,
      String(r.seed),
      r.epochs === r.plannedEpochs ? String(r.epochs) : `${r.epochs}/${r.plannedEpochs}`,
      r.status,
      pct(r.final),
      r.best ? `${pct(r.best.accuracy)} (${r.best.epoch})` : "—",
      r.firstAtBar === null ? "never" : String(r.firstAtBar),
      duration(r.wallSeconds),
      rate(r.imagesPerSecond),
      r.path,
    ]),
  );
}

/** The markdown `nnspec compare` writes (and prints). */
export function compareMarkdown(rows: readonly RunRow[], charts: readonly string[] = []): string {
  const groups = groupRows(rows);
  const tests = [...new Set(rows.map((r) => r.testImages))];
  const notes = [
    `Test accuracy on ${tests.length === 1 ? `${tests[0]} test images (every run)` : `different test sets (${tests.join(", ")} images): not comparable`}. ` +
      "Statistics per backend and recipe use the complete runs only; ½ range = (max − min)/2 of the final accuracies. " +
      "Wall time is each run's invocation (a resumed run counts from its resume); img/s counts training only.",
  ];
  return [
    "## Per backend and recipe",
    "",
    groupTable(groups),
    "",
    "## Per run",
    "",
    runTable(rows),
    "",
    ...notes,
    "",
    ...(charts.length ? [`Charts: ${charts.join(", ")}`, ""] : []),
  ].join("\n");
}
