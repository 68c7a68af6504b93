import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { conformanceReportSchema } from "@nnspec/conformance";
import { runCli } from "./helpers/run-cli.ts";

/**
 * `nnspec conformance --browser`: the whole suite in headless Chromium (Debian's /usr/bin/chromium, or
 * $NNSPEC_CHROMIUM), for backends anywhere on disk. Each run starts a Vite server and a Chromium (a few seconds).
 */
const work = mkdtempSync(join(tmpdir(), "nnspec-browser-cli-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const NET222 = ["--only-fixtures", "--fixture", "fixtures/net222/lr-0.5.json"];

/** A plain-JS backend outside the repository: `forward` is given as source text. */
function outsideBackend(
  name: string,
  forward: string,
  environment = `typeof window === "undefined" ? "node" : "browser"`,
): string {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name, version: "0.0.0", type: "module", main: "index.js" }),
  );
  writeFileSync(
    join(dir, "index.js"),
    `const nope = async () => { throw new Error("not implemented"); };
export async function createBackend() {
  return {
    manifest: { name: ${JSON.stringify(name)}, version: "0.0.0", precision: "float64", environment: ${environment}, device: "cpu", capabilities: ["net222.forward"] },
    net222: { forward: ${forward}, gradients: nope, step: nope, train: nope },
  };
}
`,
  );
  return dir;
}

/** Processes (Chromium's included) whose command line mentions `marker`. */
function processesMentioning(marker: string): string[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .flatMap((pid) => {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        return cmd.includes(marker) ? [cmd.replace(/\0/g, " ").slice(0, 120)] : [];
      } catch {
        return [];
      }
    });
}

describe("nnspec conformance --browser", () => {
  it("runs the reference backend in Chromium: same lines as the Node run, manifest says browser, report written", async () => {
    const report = join(work, "reference.json");
    const r = await runCli([
      "conformance",
      "--backend",
      "./backends/reference",
      "--browser",
      "--only-fixtures",
      "--fixture",
      "fixtures/net222/lr-0.5.json",
      "--fixture",
      "fixtures/cnn/batch2-seed7.json",
      "--report",
      report,
    ]);
    expect(r.status, r.stdout.slice(-2000) + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^conformance: reference \(float64, browser\) — (\d+) checks$/m);
    expect(r.stdout).toMatch(/^\[ *1\/\d+\] pass/m);
    expect(r.stdout).toMatch(/^reference \d+\.\d+\.\d+ — float64, browser, /m);
    expect(r.stdout).toMatch(/^[1-9]\d* passed, 0 failed, 0 not implemented \(worst passing error/m);
    const json = conformanceReportSchema.parse(JSON.parse(readFileSync(report, "utf8")));
    expect(json.manifest?.environment).toBe("browser");
    expect(json.summary.failed).toBe(0);
    expect(json.results.some((x) => x.id.startsWith("cnn.batch2-seed7."))).toBe(true);
  });

  it("a failing check: FAIL lines, the summary, exit 1 (infinite errors survive the trip)", async () => {
    const dir = outsideBackend(
      "wrong",
      "async () => ({ h1: 0, a_h1: 0, h2: 0, a_h2: 0, o1: 0, a_o1: 0, o2: 0, a_o2: 0, E1: 0, E2: 0, E_total: Infinity })",
    );
    const r = await runCli(["conformance", "--backend", dir, "--browser", ...NET222]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/\] FAIL/);
    expect(r.stdout).toMatch(/^0 passed, [1-9]\d* failed, [1-9]\d* not implemented/m);
  });

  it("a backend whose manifest does not say browser in Chromium is refused (exit 2)", async () => {
    const dir = outsideBackend("nodeish", 'async () => { throw new Error("unused"); }', `"node"`);
    const r = await runCli(["conformance", "--backend", dir, "--browser", ...NET222]);
    expect(r.status, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/manifest says environment "node"/);
  });

  it("no Chromium: one line naming --chromium and NNSPEC_CHROMIUM, exit 2", async () => {
    const r = await runCli([
      "conformance",
      "--backend",
      "./backends/reference",
      "--browser",
      "--chromium",
      "/nonexistent",
    ]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/no Chromium at \/nonexistent.*--chromium.*NNSPEC_CHROMIUM/);
    expect(r.stdout).toBe("");
  });

  it("Chromium dying early ends the run: one line, exit 3", async () => {
    const fake = join(work, "fake-chromium");
    writeFileSync(fake, "#!/bin/sh\necho 'fake chromium: cannot start' >&2\nexit 7\n");
    chmodSync(fake, 0o755);
    const r = await runCli(["conformance", "--backend", "./backends/reference", "--browser", ...NET222], undefined, {
      NNSPEC_CHROMIUM: fake,
    });
    expect(r.status, r.stdout + r.stderr).toBe(3);
    expect(r.stderr).toMatch(/Chromium exited \(code 7\).*fake chromium: cannot start/);
  });

  it("a page that never finishes: --browser-timeout ends it with exit 3, Chromium killed, temporary folder removed", async () => {
    const dir = outsideBackend("hang", "() => new Promise(() => {})");
    // A temporary folder of its own (short: Chromium puts a Unix socket in there), so the run's files and
    // Chromium's command lines are recognisable.
    const tmp = mkdtempSync(join(tmpdir(), "nb-"));
    const t0 = Date.now();
    const r = await runCli(
      ["conformance", "--backend", dir, "--browser", "--browser-timeout", "10", ...NET222],
      undefined,
      { TMPDIR: tmp },
    );
    expect(r.status, r.stdout + r.stderr).toBe(3);
    expect(Date.now() - t0).toBeLessThan(40_000);
    expect(r.stdout).toMatch(/^conformance: hang \(float64, browser\) — \d+ checks$/m);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/--browser-timeout 10 s reached \(0\/\d+ checks done\); Chromium stopped/);
    expect(processesMentioning(tmp)).toEqual([]);
    // What the run and Chromium wrote is gone (tsx, which runs the workspace CLI, keeps its cache there).
    expect(readdirSync(tmp).filter((f) => !f.startsWith("tsx-"))).toEqual([]);
    rmSync(tmp, { recursive: true, force: true });
  });
});
