import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { runChecks, UsageError, workbooksFromEnv } from "@nnspec/conformance";
import { loadBackend, workbookChecks } from "@nnspec/conformance/node";

const workbooks = workbooksFromEnv();
if (workbooks.length === 0)
  console.warn(
    "workbook-suite: skipped — NNSPEC_WORKBOOK unset and ../shared/fixtures/excel/class-sheet-era-v1.xlsx absent",
  );

describe.skipIf(workbooks.length === 0)("2-2-2 checks from the class workbook", () => {
  it("use only audited columns: the correct reference passes although the sheet's ∂E/∂w3, ∂E/∂w4 are wrong", async () => {
    const checks = await workbookChecks(workbooks);
    expect(checks.map((c) => c.id)).toEqual([
      "workbook.Sheet1.forward",
      "workbook.Sheet1.gradients",
      "workbook.Experiment.forward",
      "workbook.Experiment.gradients",
    ]);
    const results = await runChecks(await loadBackend(join(import.meta.dirname, "../../backends/reference")), checks);
    for (const r of results) {
      expect(r.status, r.detail).toBe("pass");
      expect(r.detail).toContain("audit rejected: dE/dw3, dE/dw4");
    }
    expect(results.find((r) => r.id === "workbook.Sheet1.gradients")!.detail).toContain("6 gradient columns");
  });
});

describe("exceljs is optional for the judge", () => {
  it("a missing exceljs becomes a usage error saying how to add it", async () => {
    const missing = Object.assign(
      new Error("Cannot find package 'exceljs' imported from /x/fixtures/src/excel/load-workbook.js"),
      { code: "ERR_MODULE_NOT_FOUND" },
    );
    const load = () => Promise.reject(missing);
    await expect(workbookChecks(["/any.xlsx"], load)).rejects.toThrow(UsageError);
    await expect(workbookChecks(["/any.xlsx"], load)).rejects.toThrow(
      /needs exceljs: npm install --save-dev exceljs@4\.4\.0/,
    );
  });

  it("other import failures are not disguised as a missing exceljs", async () => {
    const other = Object.assign(new Error("Cannot find package 'zod'"), { code: "ERR_MODULE_NOT_FOUND" });
    await expect(workbookChecks(["/any.xlsx"], () => Promise.reject(other))).rejects.toThrow(/zod/);
  });

  it("the judge's own modules load without exceljs: none of them imports it statically", async () => {
    const { readdirSync, readFileSync } = await import("node:fs");
    const src = join(import.meta.dirname, "../src");
    const files = (readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith(".ts"));
    const staticExcel = files.filter((f) =>
      /^import (?!type)[^;]*from "(exceljs|@nnspec\/fixtures\/excel)"/m.test(readFileSync(join(src, f), "utf8")),
    );
    expect(staticExcel).toEqual([]);
  });
});
