import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { collectChecks, runChecks, type CheckResult } from "@nnspec/conformance";
import { loadBackend } from "@nnspec/conformance/node";
import { CNN_FIXTURE_DIR } from "@nnspec/fixtures";
import { WORKSPACE_BACKENDS, WORKSPACE_RUNS } from "../workspace-backends.ts";
import { checkGroup } from "../mutants/groups.ts";
import { caseFromSeed, caseSeeds, describeCase, generateCase, mnistDir, PYTHON, type FreshCase } from "./cases.ts";

/**
 * `nnspec calibrate`: fresh CNN golden cases the suite has never seen (PyTorch float64, seeds drawn at run time),
 * judged against every correct backend there is — the Node backends of this workspace and the PyTorch float32
 * candidate over the pipe protocol. Any failure is a false alarm of the judge; the run counts them per backend
 * and check group, and counts the finite-difference coordinates passed over for a kink.
 */
export const PYTORCH_SCRIPT = resolve(CNN_FIXTURE_DIR, "..", "..", "backends", "pytorch", "backend.py");

export interface CalibrationRunSpec {
  readonly label: string;
  readonly backend: string;
  readonly options: Record<string, unknown>;
}

/** Every correct backend this workspace can run in Node, plus the PyTorch float32 candidate when it is there. */
export function calibrationBackends(): CalibrationRunSpec[] {
  const runs = WORKSPACE_RUNS.map((r) => ({
    label: `${r.backend}${typeof r.options.precision === "string" ? `-${r.options.precision}` : ""}`,
    backend: r.backend,
    options: r.options,
  }));
  if (existsSync(PYTORCH_SCRIPT))
    runs.push({
      label: "pytorch-float32",
      backend: `cmd:${PYTHON} ${PYTORCH_SCRIPT}`,
      options: { precision: "float32" },
    });
  return runs;
}

export interface FalseAlarm {
  readonly backend: string;
  readonly group: string;
  readonly check: string;
  readonly caseSeed: number;
  readonly detail: string;
}

export interface GroupTally {
  checks: number;
  falseAlarms: number;
  worstRatio: number;
}

export interface BackendCalibration {
  readonly label: string;
  readonly precision: string;
  readonly groups: Record<string, GroupTally>;
  /** Finite-difference coordinates compared and stencils passed over for a kink (float64 backends only). */
  readonly fd: { compared: number; rejected: number };
  /** Checks judged under the backend's own decisions at near-ties of the golden (cnn-decisions.ts), and on how many cases. */
  readonly nearTies: { checks: number; cases: number };
  readonly error?: string;
  readonly ms: number;
}

export interface CalibrationResult {
  readonly baseSeed: number;
  readonly cases: readonly FreshCase[];
  readonly backends: readonly BackendCalibration[];
  readonly falseAlarms: readonly FalseAlarm[];
}

const FD_COUNTS = /(\d+) coordinates compared, (\d+) stencils passed over/;

function tallyResults(
  label: string,
  precision: string,
  results: readonly CheckResult[],
  seedOf: Map<string, number>,
  ms: number,
  alarms: FalseAlarm[],
): BackendCalibration {
  const groups: Record<string, GroupTally> = {};
  const fd = { compared: 0, rejected: 0 };
  const nearTieCases = new Set<string>();
  let nearTieChecks = 0;
  for (const r of results) {
    if (r.status === "not-implemented") continue;
    const group = checkGroup(r);
    groups[group] ??= { checks: 0, falseAlarms: 0, worstRatio: 0 };
    const g = groups[group];
    g.checks++;
    if (r.worstRatio !== undefined && Number.isFinite(r.worstRatio))
      g.worstRatio = Math.max(g.worstRatio, r.worstRatio);
    if (r.status === "fail" || r.status === "error") {
      g.falseAlarms++;
      alarms.push({
        backend: label,
        group,
        check: r.id,
        caseSeed: seedOf.get(r.source) ?? -1,
        detail: r.detail.split("\n")[0]!,
      });
    }
    if (r.status === "pass" && r.detail.includes("near-tie(s) of the golden")) {
      nearTieChecks++;
      nearTieCases.add(r.source);
    }
    const m = r.id.endsWith("finite-difference") ? FD_COUNTS.exec(r.detail) : null;
    if (m) {
      fd.compared += Number(m[1]);
      fd.rejected += Number(m[2]);
    }
  }
  return { label, precision, groups, fd, nearTies: { checks: nearTieChecks, cases: nearTieCases.size }, ms };
}

export interface CalibrateOptions {
  readonly cases: number;
  /** Base seed of the case seeds; drawn at run time when absent. */
  readonly baseSeed?: number;
  /** Exactly these case seeds instead (to reproduce cases). */
  readonly seeds?: readonly number[];
  readonly backends?: readonly CalibrationRunSpec[];
  /** Keep the generated cases in this folder instead of a temporary one. */
  readonly keepDir?: string;
  readonly log?: (line: string) => void;
}

export async function runCalibration(o: CalibrateOptions): Promise<CalibrationResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const baseSeed = o.baseSeed ?? 1 + Math.floor(Math.random() * 2_000_000_000);
  const mnist = mnistDir();
  const cases = (o.seeds ?? caseSeeds(baseSeed, o.cases)).map((s) => caseFromSeed(s, mnist !== null));
  log(
    `calibrate: ${cases.length} fresh CNN case(s)${o.seeds ? "" : ` from base seed ${baseSeed}`}${mnist ? "" : " (no MNIST files: mnist draws use randn)"}`,
  );
  const dir = o.keepDir ?? (await mkdtemp(join(tmpdir(), "nnspec-calibrate-")));
  const files: string[] = [];
  const seedOf = new Map<string, number>();
  try {
    for (const [i, c] of cases.entries()) {
      log(`  case ${i + 1}: ${describeCase(c)}`);
      const file = await generateCase(c, dir, mnist);
      files.push(file);
      seedOf.set(file, c.seed);
    }
    const alarms: FalseAlarm[] = [];
    const backends: BackendCalibration[] = [];
    for (const spec of o.backends ?? calibrationBackends()) {
      const t0 = performance.now();
      let precision = "?";
      try {
        const backend = await loadBackend(spec.backend, spec.options, { aliases: WORKSPACE_BACKENDS });
        precision = backend.manifest.precision;
        try {
          const checks = await collectChecks({
            onlyFixtures: files,
            precision: backend.manifest.precision,
            workbooks: [],
          });
          const results = await runChecks(backend, checks);
          const b = tallyResults(spec.label, precision, results, seedOf, performance.now() - t0, alarms);
          backends.push(b);
          const n = Object.values(b.groups).reduce((a, g) => a + g.falseAlarms, 0);
          log(
            `  ${spec.label}: ${results.length} checks, ${n} false alarm(s) (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
          );
        } finally {
          await backend.dispose?.();
        }
      } catch (err) {
        // A backend that cannot run here is reported, not counted as a false alarm of the judge.
        const error = (err as Error).message.split("\n")[0]!;
        backends.push({
          label: spec.label,
          precision,
          groups: {},
          fd: { compared: 0, rejected: 0 },
          nearTies: { checks: 0, cases: 0 },
          error,
          ms: performance.now() - t0,
        });
        log(`  ${spec.label}: not run: ${error}`);
      }
    }
    return { baseSeed, cases, backends, falseAlarms: alarms };
  } finally {
    if (!o.keepDir) await rm(dir, { recursive: true, force: true });
  }
}

/** False alarms per backend and check group (checks run in brackets), FD kink counts, and every false alarm. */
export function formatCalibration(r: CalibrationResult): string {
  const groups = [...new Set(r.backends.flatMap((b) => Object.keys(b.groups)))];
  const head = `| backend | ${groups.map((g) => g.replace(/^cnn\./, "CNN ")).join(" | ")} | FD coordinates compared / stencils passed over (kink) | checks judged at its own near-tie decisions (cases) |`;
  const rule = `|---|${groups.map(() => ":-:").join("|")}|:-:|:-:|`;
  const rows = r.backends.map((b) => {
    if (b.error) return `| ${b.label} | ${groups.map(() => "—").join(" | ")} | not run: ${b.error} | |`;
    const cells = groups.map((g) => {
      const t = b.groups[g];
      return t ? `${t.falseAlarms} / ${t.checks} (${t.worstRatio.toExponential(1)}×)` : "–";
    });
    return `| ${b.label} | ${cells.join(" | ")} | ${b.precision === "float64" ? `${b.fd.compared} / ${b.fd.rejected}` : "– (float64 only)"} | ${b.nearTies.checks} (${b.nearTies.cases}) |`;
  });
  const lines = [
    `false alarms / checks per group (worst error as a multiple of its tolerance), ${r.cases.length} fresh case(s):`,
    head,
    rule,
    ...rows,
  ];
  if (r.falseAlarms.length) {
    lines.push("", "false alarms (a correct backend failing):");
    for (const a of r.falseAlarms) lines.push(`  ${a.backend} on case seed ${a.caseSeed}: ${a.check}: ${a.detail}`);
  }
  const ran = r.backends.filter((b) => !b.error).length;
  lines.push(
    "",
    `${r.falseAlarms.length} false alarm(s) over ${r.cases.length} case(s) × ${ran} backend(s)${r.backends.some((b) => b.error) ? ` (${r.backends.length - ran} not run)` : ""}`,
  );
  return lines.join("\n");
}
