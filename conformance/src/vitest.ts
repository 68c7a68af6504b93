import { afterAll, describe, expect, it } from "vitest";
import { claims, type Backend } from "@nnspec/spec";
import { collectChecks, type SuiteOptions } from "./suite.ts";

/**
 * Generate one vitest test per conformance check for a backend. Unclaimed checks appear as `todo`
 * ("not implemented"), never as passes and never silently dropped. Use with top-level await in a test file:
 *   await describeConformance("reference", () => createBackend());
 */
export async function describeConformance(
  label: string,
  makeBackend: () => Promise<Backend>,
  options: SuiteOptions = {},
): Promise<void> {
  const backend = await makeBackend();
  const checks = await collectChecks({ precision: backend.manifest.precision, ...options });
  const ctx = { backend, precision: backend.manifest.precision, memo: new Map<string, Promise<unknown>>() };
  describe(`conformance: ${label} (${backend.manifest.precision}, ${backend.manifest.environment})`, () => {
    for (const check of checks) {
      if (!claims(backend, check.capability)) {
        it.todo(`${check.id} — not implemented (${check.capability} not claimed)`);
        continue;
      }
      it(check.id, async () => {
        const outcome = await check.run(ctx);
        expect(outcome.pass, outcome.detail).toBe(true);
      });
    }
    afterAll(async () => {
      await backend.dispose?.();
    });
  });
}
