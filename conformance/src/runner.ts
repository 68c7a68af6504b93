import { claims, type Backend } from "@nnspec/spec";
import type { Check, CheckResult } from "./checks.ts";

export interface RunHooks {
  onResult?(result: CheckResult, index: number, total: number): void;
}

/** Run the checks a backend claims; everything else is reported "not implemented". Errors are failures. */
export async function runChecks(backend: Backend, checks: readonly Check[], hooks: RunHooks = {}): Promise<CheckResult[]> {
  const ctx = { backend, precision: backend.manifest.precision, memo: new Map<string, Promise<unknown>>() };
  const results: CheckResult[] = [];
  for (const [i, check] of checks.entries()) {
    const base = { id: check.id, capability: check.capability, source: check.source };
    let result: CheckResult;
    if (!claims(backend, check.capability)) {
      result = { ...base, status: "not-implemented", detail: `capability ${check.capability} not claimed`, ms: 0 };
    } else {
      const t0 = performance.now();
      try {
        const o = await check.run(ctx);
        result = { ...base, status: o.pass ? "pass" : "fail", worstRatio: o.worstRatio, worstRelative: o.worstRelative, detail: o.detail, ms: performance.now() - t0 };
      } catch (err) {
        result = { ...base, status: "error", detail: `threw: ${(err as Error).stack ?? String(err)}`, ms: performance.now() - t0 };
      }
    }
    results.push(result);
    hooks.onResult?.(result, i, checks.length);
  }
  return results;
}

export interface Tally { passed: number; failed: number; notImplemented: number }

export function tally(results: readonly CheckResult[]): Tally {
  return {
    passed: results.filter((r) => r.status === "pass").length,
    failed: results.filter((r) => r.status === "fail" || r.status === "error").length,
    notImplemented: results.filter((r) => r.status === "not-implemented").length,
  };
}
