import { spawn } from "node:child_process";
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EXIT, conformanceReportSchema } from "@nnspec/conformance";
import { ROOT, runCli } from "../helpers/run-cli.ts";

/**
 * Issue 13, items 3 and 11: the JSON report is always written (also when interrupted), a partial one says so;
 * it is written through a uniquely named temporary file created exclusively, never through a symlink; a --report
 * that names a folder is refused before the run starts. Also: wrong tensor shapes from a CNN backend.
 */
const dir = mkdtempSync(join(tmpdir(), "nnspec-report-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FAULTY = "./conformance/test/faults/backends/faulty.ts";
const one222 = ["--only-fixtures", "--fixture", "fixtures/net222/lr-0.5.json"];
const readReport = (p: string) => conformanceReportSchema.parse(JSON.parse(readFileSync(p, "utf8")));

describe("--report", () => {
  it("naming a folder is refused before the run starts (exit 2, nothing run)", async () => {
    const folder = join(dir, "a-folder");
    mkdirSync(folder);
    const t0 = Date.now();
    const r = await runCli(["conformance", "--backend", "./backends/reference", "--report", folder]);
    expect(r.status).toBe(EXIT.usage);
    expect(r.stderr).toMatch(/^error: --report .*a-folder is a folder: give the report's file name/m);
    expect(r.stdout).not.toMatch(/conformance: /); // no backend started, no check run
    expect(readdirSync(folder)).toEqual([]);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it("never writes through a symlink: a planted <report>.tmp keeps its target; a symlinked <report> is replaced, its target kept", async () => {
    const out = join(dir, "sym");
    mkdirSync(out);
    const victim = join(dir, "victim.txt"),
      victim2 = join(dir, "victim2.txt");
    writeFileSync(victim, "keep me\n");
    writeFileSync(victim2, "keep me too\n");
    const report = join(out, "report.json");
    symlinkSync(victim, `${report}.tmp`);
    symlinkSync(victim2, report);
    const r = await runCli(["conformance", "--backend", "./backends/reference", ...one222, "--report", report]);
    expect(r.status, r.stderr).toBe(EXIT.ok);
    expect(readFileSync(victim, "utf8")).toBe("keep me\n");
    expect(readFileSync(victim2, "utf8")).toBe("keep me too\n");
    expect(lstatSync(report).isSymbolicLink()).toBe(false);
    expect(readReport(report).summary).toEqual({ passed: 6, failed: 0, notImplemented: 0 });
    // No temporary file is left behind (the planted link is not ours and stays).
    expect(readdirSync(out).sort()).toEqual(["report.json", "report.json.tmp"]);
  });

  it("SIGINT during a hung check: the backend is stopped, the report written as incomplete with what ran (exit 3)", async () => {
    const report = join(dir, "interrupted.json");
    const child = spawn(
      process.execPath,
      [
        join(ROOT, "conformance/bin/nnspec.js"),
        "conformance",
        "--backend",
        FAULTY,
        ...one222,
        "--report",
        report,
        "--check-timeout",
        "300",
      ],
      {
        cwd: ROOT,
        env: { ...process.env, NNSPEC_WORKBOOK: "", NO_COLOR: "1", NNSPEC_FAULT: "hang-interval" },
      },
    );
    let stdout = "",
      stderr = "";
    const firstResult = new Promise<void>((ok) => {
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        stdout += d;
        if (/\[1\/6\] pass/.test(stdout)) ok();
      });
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const closed = new Promise<number | null>((ok) => child.on("close", ok));
    await firstResult;
    // While the second check hangs, the report on disk is already a valid, partial one.
    const during = readReport(report);
    expect(during.incomplete?.reason).toMatch(/did not finish/);
    await new Promise((r) => setTimeout(r, 500));
    child.kill("SIGINT");
    const t0 = Date.now();
    expect(await closed, stderr).toBe(EXIT.incomplete);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(stderr).toMatch(/interrupted by SIGINT: stopping the run and writing the report/);
    expect(stderr).toMatch(/error: conformance run incomplete: interrupted by SIGINT; partial report: /);
    const after = readReport(report);
    expect(after.incomplete).toEqual({ reason: "interrupted by SIGINT", notRun: 5 });
    expect(after.results.map((x) => [x.id, x.status])).toEqual([["net222.lr-0.5.forward.step0", "pass"]]);
  });
});

describe("wrong tensor shapes from a CNN backend", () => {
  it("a short block and a non-tensor are those checks' failures, named; the rest of the forward checks pass", async () => {
    const report = join(dir, "shapes.json");
    const r = await runCli([
      "conformance",
      "--backend",
      "./conformance/test/faults/backends/cnn-shapes.ts",
      "--only-fixtures",
      "--fixture",
      "fixtures/cnn/batch2-seed7.json",
      "--report",
      report,
    ]);
    expect(r.status, r.stderr).toBe(EXIT.fault);
    const rep = readReport(report);
    const bad = rep.results.filter((x) => x.status !== "pass" && x.status !== "not-implemented");
    expect(bad.map((x) => [x.id.replace("cnn.batch2-seed7.", ""), x.status])).toEqual([
      ["forward.block1", "fail"],
      ["eval.logProbs", "error"],
      ["eval.differs-from-train", "error"],
    ]);
    expect(bad[0]!.detail).toBe("block1: backend returned 12544 values, expected 25088");
    expect(bad[1]!.detail).toMatch(
      /result of model\.forward: field "logProbs": expected a float32 or float64 tensor, got a plain object/,
    );
    expect(rep.summary.passed).toBeGreaterThan(20);
  }, 120_000);
});
