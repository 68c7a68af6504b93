import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { collectChecks, runChecks } from "@nnspec/conformance";
import { MUTANT_CORPUS, runMutants } from "../src/mutants/run.ts";
import { LEGEND, formatKillMatrix } from "../src/mutants/format.ts";
import { checkGroup } from "../src/mutants/groups.ts";
import { toFloat16 } from "../src/mutants/float16.ts";

describe("the mutant corpus", () => {
  it("has at least 24 mutants with distinct ids, beside one control per family", () => {
    const ids = MUTANT_CORPUS.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(MUTANT_CORPUS.filter((m) => !m.control).length).toBeGreaterThanOrEqual(24);
    expect(
      MUTANT_CORPUS.filter((m) => m.control)
        .map((m) => m.family)
        .sort(),
    ).toEqual(["cnn", "net222"]);
  });

  it("groups checks by family and part, whatever dots the case name holds", () => {
    expect(checkGroup({ id: "net222.lr-0.1.gradients.step0", source: "/x/lr-0.1.json" })).toBe("net222.gradients");
    expect(checkGroup({ id: "cnn.batch2-seed7.step.param.fc.bias", source: "/x/batch2-seed7.json" })).toBe("cnn.step");
  });

  it("rounds to float16 like IEEE half precision", () => {
    expect(toFloat16(1)).toBe(1);
    expect(toFloat16(1 + 2 ** -11)).toBe(1); // a tie goes to even
    expect(toFloat16(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    expect(toFloat16(65504)).toBe(65504);
    expect(toFloat16(70000)).toBe(Infinity);
    expect(toFloat16(2 ** -24)).toBe(2 ** -24);
  });
});

/**
 * `nnspec mutants` in CI: every mutant is caught at float32 and at float64, and the unmutated controls pass
 * every check (otherwise "caught" would prove nothing).
 */
describe("nnspec mutants", () => {
  for (const precision of ["float32", "float64"] as const) {
    it(`catches every mutant at ${precision}, and the controls pass`, async () => {
      const run = await runMutants({ precision });
      console.log(`${formatKillMatrix(run)}\n${LEGEND}\n${precision}: ${(run.ms / 1000).toFixed(1)} s`);
      expect(run.falseAlarms, "controls must pass every check").toEqual([]);
      expect(run.survivors, "mutants no check caught").toEqual([]);
    }, 900_000);
  }
});

describe("the dropout-rates-ignored mutant", () => {
  // The full run only asks that some check catches it; this pins it to the checks written for rates.
  it("fails the rates checks and no other cnn.dropout check; the control passes them all", async () => {
    const golden = fileURLToPath(new URL("../../fixtures/cnn/batch2-seed7.json", import.meta.url));
    const checks = (await collectChecks({ onlyFixtures: [golden], precision: "float64", workbooks: [] })).filter(
      (c) => checkGroup(c) === "cnn.dropout",
    );
    expect(checks.map((c) => c.id)).toContain("cnn.batch2-seed7.dropout.rates");
    const failing = async (id: string) => {
      const backend = MUTANT_CORPUS.find((m) => m.id === id)!.make("float64");
      try {
        return (await runChecks(backend, checks)).filter((r) => r.status !== "pass").map((r) => r.id);
      } finally {
        await backend.dispose?.();
      }
    };
    expect(await failing("control-cnn")).toEqual([]);
    expect((await failing("dropout-rates-ignored")).sort()).toEqual([
      "cnn.batch2-seed7.dropout.rates",
      "cnn.batch2-seed7.dropout.rates-backward",
      "cnn.batch2-seed7.dropout.rates-zero",
    ]);
    // A backward that scales by the architecture's rate is caught by the backward check alone.
    expect(await failing("dropout-backward-default-rate")).toEqual(["cnn.batch2-seed7.dropout.rates-backward"]);
  }, 120_000);
});
