import type { Backend, Capability, Comparison, Precision } from "@nnspec/spec";

/**
 * A check is one named, structured assertion about a backend (id like `cnn.backward.grad.conv3.weight`).
 * Suites turn golden cases (fixture files) into checks; the runner decides per capability whether a check runs
 * or is reported "not implemented".
 */
export interface CheckOutcome {
  readonly pass: boolean;
  /** Worst |a−e| / allowed over what the check compared (≤ 1 passes); absent for non-numeric checks. */
  readonly worstRatio?: number;
  /** Worst plain relative error, for reports. */
  readonly worstRelative?: number;
  readonly detail: string;
}

export interface CheckContext {
  readonly backend: Backend;
  readonly precision: Precision;
  /** Shared per-run memo so checks of one golden case reuse one backend computation. */
  readonly memo: Map<string, Promise<unknown>>;
}

export interface Check {
  readonly id: string;
  readonly capability: Capability;
  /** Golden case this check comes from (file path), for reports. */
  readonly source: string;
  run(ctx: CheckContext): Promise<CheckOutcome>;
}

/** "timeout": no result within the check's time limit (a failure, as "fail" and "error" are). */
export type CheckStatus = "pass" | "fail" | "error" | "timeout" | "not-implemented";

export interface CheckResult {
  readonly id: string;
  readonly capability: Capability;
  readonly source: string;
  readonly status: CheckStatus;
  readonly worstRatio?: number;
  readonly worstRelative?: number;
  readonly detail: string;
  readonly ms: number;
}

/** Memoise a computation shared by several checks (e.g. one forward pass checked block by block). */
export function memo<T>(ctx: CheckContext, key: string, compute: () => Promise<T>): Promise<T> {
  let p = ctx.memo.get(key) as Promise<T> | undefined;
  if (!p) {
    p = compute();
    // Handled here too: a computation whose check was abandoned (timeout, dead backend) may reject with no one awaiting it.
    p.catch(() => undefined);
    ctx.memo.set(key, p);
  }
  return p;
}

/** Outcome from one or more tolerance comparisons; the worst (largest ratio to its tolerance) is described. */
export function outcomeOf(parts: ReadonlyArray<readonly [label: string, c: Comparison]>): CheckOutcome {
  if (parts.length === 0) return { pass: false, detail: "nothing compared" };
  const [label, c] = parts.reduce((w, p) => (p[1].worstRatio > w[1].worstRatio ? p : w));
  const pass = parts.every(([, x]) => x.pass);
  const detail =
    c.nonFiniteMismatch > 0
      ? `${label}: ${c.nonFiniteMismatch} non-finite mismatch(es), e.g. got ${c.actualAtWorst} expected ${c.expectedAtWorst} at [${c.worstIndex}]`
      : `${label}: worst ${c.worstRatio.toExponential(2)}× tolerance (rel ${c.worstRelative.toExponential(2)}, got ${c.actualAtWorst} expected ${c.expectedAtWorst} at [${c.worstIndex}])`;
  return { pass, worstRatio: c.worstRatio, worstRelative: Math.max(...parts.map(([, x]) => x.worstRelative)), detail };
}
