import { claims, type Backend } from "@nnspec/spec";
import { collectChecks, type Check, type CheckContext } from "@nnspec/conformance";
import { CNN_MUTANTS, cnnMutantBackend, type MutantPrecision } from "./cnn.ts";
import { NET222_MUTANTS, net222MutantBackend } from "./net222.ts";
import { groupChecks } from "./groups.ts";

/**
 * `nnspec mutants`: the full suite against every mutant of the corpus, at one precision. Per mutant each check
 * group runs until its first failure (so a matrix cell costs at most one failing check), and the first failing
 * check of the whole suite is reported as the one that catches it. The unmutated backends run first, in full, as
 * controls: a suite that failed a correct backend would "catch" every mutant and prove nothing.
 */
export interface MutantEntry {
  readonly id: string;
  readonly title: string;
  readonly family: "net222" | "cnn";
  readonly make: (precision: MutantPrecision) => Backend;
  readonly control: boolean;
}

export const MUTANT_CORPUS: readonly MutantEntry[] = [
  {
    id: "control-net222",
    title: "unmutated 2-2-2",
    family: "net222",
    control: true,
    make: (p) => net222MutantBackend(null, p),
  },
  {
    id: "control-cnn",
    title: "unmutated reference CNN",
    family: "cnn",
    control: true,
    make: (p) => cnnMutantBackend(null, p),
  },
  ...NET222_MUTANTS.map(
    (m): MutantEntry => ({
      id: m.id,
      title: m.title,
      family: "net222",
      control: false,
      make: (p) => net222MutantBackend(m, p),
    }),
  ),
  ...CNN_MUTANTS.map(
    (m): MutantEntry => ({
      id: m.id,
      title: m.title,
      family: "cnn",
      control: false,
      make: (p) => cnnMutantBackend(m, p),
    }),
  ),
];

export type Cell = "caught" | "passed" | "not-claimed";

export interface MutantResult {
  readonly id: string;
  readonly title: string;
  readonly control: boolean;
  readonly cells: Readonly<Record<string, Cell>>;
  /** The first failing check in suite order and why it failed; null when nothing failed. */
  readonly firstCatch: { readonly check: string; readonly detail: string } | null;
  /** Checks run and failed (controls run every check; mutants stop each group at its first failure). */
  readonly ran: number;
  readonly failed: number;
  readonly ms: number;
}

export interface MutantsRun {
  readonly precision: MutantPrecision;
  readonly groups: readonly string[];
  readonly results: readonly MutantResult[];
  /** Mutants no check caught. */
  readonly survivors: readonly string[];
  /** Controls that failed a check: the suite rejects a correct backend. */
  readonly falseAlarms: readonly string[];
  readonly ms: number;
}

async function judge(
  entry: MutantEntry,
  precision: MutantPrecision,
  groups: Map<string, Check[]>,
  order: Map<Check, number>,
): Promise<MutantResult> {
  const t0 = performance.now();
  const backend = entry.make(precision);
  const ctx: CheckContext = { backend, precision, memo: new Map() };
  const cells: Record<string, Cell> = {};
  let first: { index: number; check: string; detail: string } | null = null;
  let ran = 0,
    failed = 0;
  for (const [group, checks] of groups) {
    let cell: Cell = "not-claimed";
    for (const check of checks) {
      if (!claims(backend, check.capability)) continue;
      if (cell === "not-claimed") cell = "passed";
      ran++;
      let pass: boolean, detail: string;
      try {
        ({ pass, detail } = await check.run(ctx));
      } catch (err) {
        pass = false;
        detail = `threw: ${(err as Error).message}`;
      }
      if (pass) continue;
      failed++;
      cell = "caught";
      const index = order.get(check)!;
      if (!first || index < first.index) first = { index, check: check.id, detail };
      if (!entry.control) break; // the group's verdict is known; a control runs in full to list every false alarm
    }
    cells[group] = cell;
  }
  await backend.dispose?.();
  return {
    id: entry.id,
    title: entry.title,
    control: entry.control,
    cells,
    ran,
    failed,
    firstCatch: first ? { check: first.check, detail: first.detail } : null,
    ms: performance.now() - t0,
  };
}

export async function runMutants(o: {
  precision: MutantPrecision;
  only?: readonly string[];
  onResult?: (r: MutantResult) => void;
}): Promise<MutantsRun> {
  const t0 = performance.now();
  // The committed goldens only (no workbook): what every backend is judged on.
  const checks = await collectChecks({ precision: o.precision, workbooks: [] });
  const order = new Map(checks.map((c, i) => [c, i]));
  const groups = groupChecks(checks);
  const corpus = MUTANT_CORPUS.filter((m) => m.control || !o.only || o.only.includes(m.id));
  const results: MutantResult[] = [];
  for (const entry of corpus) {
    const r = await judge(entry, o.precision, groups, order);
    results.push(r);
    o.onResult?.(r);
  }
  return {
    precision: o.precision,
    groups: [...groups.keys()],
    results,
    survivors: results.filter((r) => !r.control && r.failed === 0).map((r) => r.id),
    falseAlarms: results.filter((r) => r.control && r.failed > 0).map((r) => r.id),
    ms: performance.now() - t0,
  };
}
