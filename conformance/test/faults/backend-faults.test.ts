import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { EXIT, conformanceReportSchema, type ConformanceReport } from "@nnspec/conformance";
import { runCli, type CliResult } from "../helpers/run-cli.ts";

/**
 * Issue 13, items 1–3 and 14: broken backends. The backend runs in a child process, so whatever it does is one
 * check's failure (or, when it cannot be restarted, an incomplete run): never exit 0, exit 13 or a hang. Each case
 * runs one 2-2-2 trajectory (6 checks); the fault sits in the second check, so the first check's pass and the
 * checks after the fault show that nothing is lost.
 */
const dir = mkdtempSync(join(tmpdir(), "nnspec-faults-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const FAULTY = "./conformance/test/faults/backends/faulty.ts";
const GOLDEN = "fixtures/net222/lr-0.5.json";
const GRADIENTS = "net222.lr-0.5.gradients.step0";

interface Ran extends CliResult {
  readonly report: ConformanceReport;
}

async function judge(fault: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  const report = join(dir, `${fault}-${extra.join("").replace(/\W/g, "")}.json`);
  const r = await runCli(
    [
      "conformance",
      "--backend",
      FAULTY,
      "--only-fixtures",
      "--fixture",
      GOLDEN,
      "--report",
      report,
      "--check-timeout",
      "3",
      ...extra,
    ],
    undefined,
    { NNSPEC_FAULT: fault, ...env },
  );
  return { ...r, report: conformanceReportSchema.parse(JSON.parse(readFileSync(report, "utf8"))) };
}

const statuses = (r: Ran) =>
  Object.fromEntries(r.report.results.map((x) => [x.id.replace("net222.lr-0.5.", ""), x.status]));
const gradientsResult = (r: Ran) => r.report.results.find((x) => x.id === GRADIENTS)!;

/** The fault is the gradients check's failure; the five others pass; the run is complete; exit 1. */
function expectOneFailure(r: Ran, status: "fail" | "error" | "timeout", detail: RegExp): void {
  expect(r.status, r.stderr + r.stdout).toBe(EXIT.fault);
  expect(r.report.incomplete).toBeUndefined();
  expect(statuses(r)).toEqual({
    "forward.step0": "pass",
    "gradients.step0": status,
    "step.step0": "pass",
    "train.weights": "pass",
    "train.forward": "pass",
    "train.gradients": "pass",
  });
  expect(gradientsResult(r).detail).toMatch(detail);
  expect(r.stdout).toMatch(/5 passed, 1 failed, 0 not implemented/);
  expect(r.stdout).toMatch(detail);
}

describe("a broken backend is one check's failure, and the run goes on (exit 1, report complete)", () => {
  it("throws an Error", async () => {
    expectOneFailure(await judge("throw"), "error", /threw: Error: injected fault: gradients\(\) threw/);
  });
  it("`throw undefined` (what Promise.reject() gives)", async () => {
    expectOneFailure(await judge("throw-undefined"), "error", /undefined was thrown \(no error object\)/);
  });
  it("calls process.exit(0) during a check", async () => {
    expectOneFailure(
      await judge("exit0"),
      "error",
      /the backend process stopped: backend ".*faulty\.ts" exited with code 0/,
    );
  });
  it("crashes (abort)", async () => {
    expectOneFailure(await judge("abort"), "error", /was killed by SIGABRT/);
  });
  it("runs out of memory", async () => {
    // A small heap for this run's processes, so the backend exhausts it at once.
    const r = await judge("oom", [], { NODE_OPTIONS: "--max-old-space-size=96" });
    expectOneFailure(r, "error", /\(out of memory\)/);
    expect(gradientsResult(r).detail).toMatch(/heap out of memory/);
  });
  it("hangs, keeping its event loop alive (setInterval + a promise that never settles)", async () => {
    const t0 = Date.now();
    expectOneFailure(
      await judge("hang-interval"),
      "timeout",
      /no result within 3 s \(check timeout\); the backend was restarted/,
    );
    expect(Date.now() - t0).toBeLessThan(30_000);
  });
  it("returns a promise that never settles", async () => {
    expectOneFailure(await judge("never"), "timeout", /no result within 3 s/);
  });
  it("returns NaN", async () => {
    expectOneFailure(await judge("nan"), "fail", /non-finite mismatch/);
  });
  it("returns numbers as strings", async () => {
    expectOneFailure(
      await judge("strings"),
      "error",
      /result of net222\.gradients[\s\S]*field "w1": expected a number, got the string "0\.000316/,
    );
  });
  it("returns the wrong shape (a gradient missing)", async () => {
    expectOneFailure(await judge("missing"), "error", /field "w8": missing \(expected a number\)/);
  });
});

describe("output on stdout", () => {
  it("a JS backend's console.log and process.stdout.write go to its stderr, not into the protocol: every check passes", async () => {
    const r = await judge("stdout");
    expect(r.status, r.stderr).toBe(EXIT.ok);
    expect(r.report.summary).toEqual({ passed: 6, failed: 0, notImplemented: 0 });
  });
  it("a program printing on stdout breaks the protocol: that check's error names the line, and a fresh instance goes on", async () => {
    const script = join(dir, "chatty.py");
    writeFileSync(
      script,
      `import json, sys
hello = sys.stdin.readline()
manifest = {"name": "chatty", "version": "0", "precision": "float64", "environment": "process", "device": "print()", "capabilities": ["net222.forward"]}
print(json.dumps({"type": "ready", "protocol": 1, "manifest": manifest}), flush=True)
for line in sys.stdin:
    print("debug: got a call", flush=True)
`,
    );
    const report = join(dir, "chatty.json");
    const r = await runCli([
      "conformance",
      "--backend",
      `cmd:python3 ${script}`,
      "--only-fixtures",
      "--fixture",
      GOLDEN,
      "--report",
      report,
    ]);
    expect(r.status, r.stderr).toBe(EXIT.fault);
    const rep = conformanceReportSchema.parse(JSON.parse(readFileSync(report, "utf8")));
    expect(rep.results.filter((x) => x.status !== "not-implemented").map((x) => [x.id, x.status])).toEqual([
      ["net222.lr-0.5.forward.step0", "error"],
    ]);
    expect(rep.results[0]!.detail).toMatch(
      /broke the protocol: a line that is not a JSON message: "debug: got a call" \(stdout is the protocol channel: a backend logs to stderr\)/,
    );
  });
});

describe("a backend that cannot be restarted: the run is incomplete (exit 3), the report says why and keeps what ran", () => {
  it("crashes, and the fresh instance refuses to start", async () => {
    const marker = join(dir, "crashed-once");
    const r = await judge("restart-fails", [], { NNSPEC_FAULT_MARKER: marker });
    expect(r.status, r.stderr).toBe(EXIT.incomplete);
    expect(r.stderr).toMatch(
      /error: conformance run incomplete: the backend could not be restarted after net222\.lr-0\.5\.gradients\.step0 \(error\):.*cannot start again; partial report: /,
    );
    expect(r.report.incomplete).toEqual({
      reason: expect.stringMatching(/could not be restarted.*cannot start again/),
      notRun: 4,
    });
    expect(statuses(r)).toEqual({ "forward.step0": "pass", "gradients.step0": "error" });
    expect(r.report.summary).toEqual({ passed: 1, failed: 1, notImplemented: 0 });
  });
});

describe("--in-process (debugging): the same faults are still reported, never exit 0 or a hang", () => {
  it("`throw undefined` is an error result, not a crash of the runner", async () => {
    expectOneFailure(await judge("throw-undefined", ["--in-process"]), "error", /undefined was thrown/);
  });
  it("a never-settling promise is a timeout (not exit 13), and a live setInterval does not keep the judge running", async () => {
    expectOneFailure(
      await judge("hang-interval", ["--in-process"]),
      "timeout",
      /no result within 3 s \(check timeout\); the backend was restarted/,
    );
  });
  it("process.exit(0) ends the run with exit 3 and an incomplete report, naming the check", async () => {
    const r = await judge("exit0", ["--in-process"]);
    expect(r.status).toBe(EXIT.incomplete);
    expect(r.stderr).toMatch(
      /conformance run incomplete: the process exited with code 0 during net222\.lr-0\.5\.gradients\.step0 \(in-process run/,
    );
    expect(r.report.incomplete?.reason).toMatch(/exited with code 0 during net222\.lr-0\.5\.gradients\.step0/);
    expect(statuses(r)).toEqual({ "forward.step0": "pass" });
  });
});
