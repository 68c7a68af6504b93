import { describe, expect, it } from "vitest";
import { caseFromSeed, caseSeeds, generatorUnavailable } from "../src/calibrate/cases.ts";
import { calibrationBackends, formatCalibration, runCalibration } from "../src/calibrate/run.ts";

describe("fresh cases", () => {
  it("are determined by their seed alone", () => {
    expect(caseFromSeed(12345, true)).toEqual(caseFromSeed(12345, true));
    expect(caseSeeds(7, 5)).toEqual(caseSeeds(7, 5));
    expect(new Set(caseSeeds(7, 50)).size).toBe(50);
    const kinds = new Set(caseSeeds(1, 200).map((s) => caseFromSeed(s, true).inputs));
    expect([...kinds].sort()).toEqual(["mnist", "randn", "synthetic", "ties"]);
    expect(caseSeeds(1, 200).every((s) => caseFromSeed(s, false).inputs !== "mnist")).toBe(true);
  });
});

const why = await generatorUnavailable();
if (why) console.log(`calibrate on fresh goldens skipped: ${why}`);

/**
 * CI's fresh goldens: 3 cases whose seeds are drawn now and printed (the log line of each case reproduces it with
 * `nnspec calibrate --seeds <seed>`); every correct backend must pass every check on them. The WebGPU backends
 * run on SwiftShader (a CPU) here, minutes per case, so CI draws for the others unless NNSPEC_CALIBRATE_BACKENDS
 * (comma-separated run labels, or "all") says otherwise; `nnspec calibrate` itself runs them all.
 */
const CPU_EMULATED_GPU = new Set(["tfjs-webgpu", "webgpu"]);
const wanted = process.env.NNSPEC_CALIBRATE_BACKENDS;
const runs = calibrationBackends().filter((b) =>
  wanted === "all" ? true : wanted ? wanted.split(",").includes(b.label) : !CPU_EMULATED_GPU.has(b.label),
);

describe.skipIf(why !== null)("nnspec calibrate on 3 fresh cases", () => {
  it("no correct backend fails a check", async () => {
    const lines: string[] = [];
    const r = await runCalibration({
      cases: 3,
      backends: runs,
      log: (l) => {
        lines.push(l);
        console.log(l);
      },
    });
    console.log(formatCalibration(r));
    expect(r.backends.filter((b) => b.error).map((b) => `${b.label}: ${b.error}`)).toEqual([]);
    expect(
      r.falseAlarms.map((a) => `${a.backend} seed ${a.caseSeed} ${a.check}: ${a.detail}`),
      lines.join("\n"),
    ).toEqual([]);
  }, 1_800_000);
});
