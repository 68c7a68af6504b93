import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { runChecks, workbooksFromEnv } from "@nnspec/conformance";
import { loadBackend, workbookChecks } from "@nnspec/conformance/node";

const workbooks = workbooksFromEnv();
if (workbooks.length === 0) console.warn("workbook-suite: skipped — NNSPEC_WORKBOOK unset and ../shared/fixtures/excel/class-sheet-era-v1.xlsx absent");

describe.skipIf(workbooks.length === 0)("2-2-2 checks from the class workbook", () => {
  it("use only audited columns: the correct reference passes although the sheet's ∂E/∂w3, ∂E/∂w4 are wrong", async () => {
    const checks = await workbookChecks(workbooks);
    expect(checks.map((c) => c.id)).toEqual(["workbook.Sheet1.forward", "workbook.Sheet1.gradients", "workbook.Experiment.forward", "workbook.Experiment.gradients"]);
    const results = await runChecks(await loadBackend(join(import.meta.dirname, "../../backends/reference")), checks);
    for (const r of results) {
      expect(r.status, r.detail).toBe("pass");
      expect(r.detail).toContain("audit rejected: dE/dw3, dE/dw4");
    }
    expect(results.find((r) => r.id === "workbook.Sheet1.gradients")!.detail).toContain("6 gradient columns");
  });
});
