import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";
import { z } from "zod";
import { BENCH_PHASES } from "./protocol.ts";
import type { BenchEntry } from "@nnspec/spec";
import type { BenchProgress } from "./progress.ts";

/**
 * Browser backends (gpujs on WebGL2, tfjs-webgl, the reference in Chromium) are benched through the vitest
 * browser project rather than a page of our own: the bench spawns `vitest run --project browser` on the backend's
 * conformance.browser.test.ts and reports the check tally and the run's wall time (vite + Chromium start-up
 * included). Speed figures, worst error/tolerance and memory are not available this way and stay empty.
 */
export interface BrowserTarget {
  readonly id: string;
  readonly testFile: string;
}

/** Every workspace backend with a browser conformance test: "<folder>-chromium". */
export function browserTargets(repoRoot: string): BrowserTarget[] {
  const dir = join(repoRoot, "backends");
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort().flatMap((name) => {
    const testFile = join(dir, name, "test", "conformance.browser.test.ts");
    return existsSync(testFile) ? [{ id: `${name}-chromium`, testFile }] : [];
  });
}

// The part of vitest's JSON report the bench reads.
const vitestJsonSchema = z.object({
  testResults: z.array(z.object({
    assertionResults: z.array(z.object({ title: z.string(), status: z.string(), failureMessages: z.array(z.string()).optional() }).passthrough()),
  }).passthrough()),
}).passthrough();

export async function runBrowserTarget(t: BrowserTarget, o: { repoRoot: string; work: string; timeoutSeconds: number; progress: BenchProgress }): Promise<BenchEntry> {
  const report = join(o.work, `${t.id}.vitest.json`);
  const vitest = createRequire(join(o.repoRoot, "package.json")).resolve("vitest/vitest.mjs");
  const t0 = Date.now();
  o.progress.phase(t.id, "conformance");
  const { code, timedOut, stderr } = await new Promise<{ code: number | null; timedOut: boolean; stderr: string }>((done) => {
    const child = spawn(process.execPath, [vitest, "run", "--project", "browser", resolve(t.testFile), "--reporter=json", `--outputFile=${report}`],
      { cwd: o.repoRoot, stdio: ["ignore", "ignore", "pipe"], detached: true, env: { ...process.env, NNSPEC_VITEST_JSON: "" } });
    let err = "";
    let killed = false;
    child.stderr!.setEncoding("utf8").on("data", (s: string) => { err = (err + s).slice(-4000); });
    const timer = setTimeout(() => { killed = true; try { process.kill(-child.pid!, "SIGKILL"); } catch { child.kill("SIGKILL"); } }, o.timeoutSeconds * 1000);
    child.on("close", (c) => { clearTimeout(timer); done({ code: c, timedOut: killed, stderr: err }); });
    child.on("error", (e) => { clearTimeout(timer); done({ code: null, timedOut: false, stderr: e.message }); });
  });
  const seconds = (Date.now() - t0) / 1000;
  let tally: { passed: number; failed: number; todo: number } | null = null;
  if (existsSync(report)) {
    const r = vitestJsonSchema.parse(JSON.parse(readFileSync(report, "utf8")));
    const all = r.testResults.flatMap((f) => f.assertionResults);
    tally = { passed: all.filter((a) => a.status === "passed").length, failed: all.filter((a) => a.status === "failed").length, todo: all.filter((a) => a.status === "todo" || a.status === "pending" || a.status === "skipped").length };
  }
  const status: BenchEntry["status"] = timedOut ? "timed-out" : tally && tally.failed === 0 && code === 0 ? "ok" : "failed";
  const message = timedOut ? `no result within ${o.timeoutSeconds} s; killed` : tally ? `${tally.failed} failed test(s)` : `vitest exited with code ${code}: ${stderr.trim().split("\n").slice(-8).join("\n")}`;
  o.progress.phaseEnd(t.id, "conformance", status, seconds, tally ? `${tally.passed} passed, ${tally.failed} failed, ${tally.todo} not implemented (vitest browser run)` : message);
  const checks = tally ? tally.passed + tally.failed + tally.todo : 0;
  return {
    id: t.id, kind: "browser", specifier: t.testFile, options: {}, manifest: null, device: "headless Chromium (vitest browser project)", precision: "",
    status, failure: status === "ok" ? null : { phase: "conformance", message },
    phases: BENCH_PHASES.map((name) => name === "conformance"
      ? { name, status, seconds }
      : { name, status: "skipped" as const, seconds: 0, detail: "not measured for browser backends (vitest browser run: conformance only)" }),
    startup: null,
    conformance: tally ? { checks, passed: tally.passed, failed: tally.failed, notImplemented: tally.todo, worstRatio: null, wallSeconds: seconds, fixtures: [], groups: [] } : null,
    speed: { net222StepsPerSecond: null, trainImagesPerSecond: null, inferImagesPerSecondBatch1: null, inferImagesPerSecondBatch128: null },
    training: null, peakRssBytes: null, wallSeconds: seconds,
    notes: ["browser backend benched through a vitest browser run: conformance tally and wall time (vite + Chromium start-up included) only"],
  };
}
