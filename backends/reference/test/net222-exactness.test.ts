import { describe, expect, it } from "vitest";
import { collectChecks, runChecks } from "@nnspec/conformance";
import { createBackend } from "../src/index.ts";

// The bar for the float64 reference: ≤ 1e-14 relative against the goldens on every 2-2-2 quantity.
describe("reference 2-2-2 agreement with the float64 goldens", () => {
  it("worst relative error over every check is ≤ 1e-14", async () => {
    const backend = await createBackend({ precision: "float64" });
    const checks = (await collectChecks()).filter((c) => c.id.startsWith("net222."));
    const results = await runChecks(backend, checks);
    expect(results.length).toBeGreaterThanOrEqual(36);
    for (const r of results) {
      expect(r.status, r.detail).toBe("pass");
      expect(r.worstRelative!, r.id).toBeLessThanOrEqual(1e-14);
    }
  });
});
