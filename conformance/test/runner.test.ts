import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { forward, gradients, type Backend, type Capability, type Net222Ops } from "@nnspec/spec";
import { collectChecks, runChecks, tally } from "@nnspec/conformance";
import { BackendLoadError, loadBackend } from "@nnspec/conformance/node";

const ALL_222: Capability[] = ["net222.forward", "net222.gradients", "net222.step", "net222.train"];

function fakeBackend(capabilities: Capability[], net222?: Partial<Net222Ops>): Backend {
  const base: Net222Ops = {
    forward: async (c) => forward(c),
    gradients: async (c) => gradients(c),
    step: async () => {
      throw new Error("not used");
    },
    train: async () => {
      throw new Error("not used");
    },
  };
  return {
    manifest: { name: "fake", version: "0", precision: "float64", environment: "node", device: "test", capabilities },
    net222: { ...base, ...net222 },
  };
}

const checks = (await collectChecks()).filter((c) => c.id.startsWith("net222."));

describe("runner", () => {
  it("a backend claiming nothing: every check 'not implemented', none passed, none failed", async () => {
    const results = await runChecks(fakeBackend([]), checks);
    expect(tally(results)).toEqual({ passed: 0, failed: 0, notImplemented: checks.length });
  });

  it("the class-sheet bug (a_h1 in place of a_h2 in ∂E/∂w3) fails exactly the gradient checks", async () => {
    const buggy = fakeBackend(["net222.forward", "net222.gradients"], {
      gradients: async (c) => {
        const f = forward(c);
        const g = gradients(c, f);
        const d1 = (f.a_o1 - c.t1) * f.a_o1 * (1 - f.a_o1),
          d2 = (f.a_o2 - c.t2) * f.a_o2 * (1 - f.a_o2);
        return { ...g, w3: (d1 * c.w6 + d2 * c.w8) * f.a_h1 * (1 - f.a_h1) * c.i1 };
      },
    });
    const results = await runChecks(buggy, checks);
    const failed = results.filter((r) => r.status === "fail").map((r) => r.id);
    expect(failed).toEqual(checks.filter((c) => c.capability === "net222.gradients").map((c) => c.id));
    expect(results.filter((r) => r.status === "pass").every((r) => r.capability === "net222.forward")).toBe(true);
  });

  it("NaN outputs fail (non-finite values are never close to a number)", async () => {
    const nan = fakeBackend(["net222.forward"], { forward: async (c) => ({ ...forward(c), E_total: NaN }) });
    const results = await runChecks(nan, checks);
    const fwd = results.filter((r) => r.capability === "net222.forward");
    expect(fwd.every((r) => r.status === "fail" && r.detail.includes("non-finite"))).toBe(true);
  });

  it("a throwing backend is reported as an error, and the run goes on", async () => {
    const results = await runChecks(fakeBackend(ALL_222), checks);
    const train = results.filter((r) => r.capability === "net222.train");
    expect(train.length).toBeGreaterThan(0);
    expect(train.every((r) => r.status === "error" && r.detail.includes("not used"))).toBe(true);
    expect(results.filter((r) => r.capability === "net222.forward").every((r) => r.status === "pass")).toBe(true);
  });
});

describe("loading backends", () => {
  const dir = mkdtempSync(join(tmpdir(), "nnspec-load-"));
  it("unknown name → clear error saying what a backend specifier is", async () => {
    await expect(loadBackend("no-such-backend-xyz")).rejects.toThrow(
      /cannot load backend "no-such-backend-xyz"[\s\S]*give a package name or a path/,
    );
  });
  it("missing path → error naming it", async () => {
    await expect(loadBackend(join(dir, "missing"))).rejects.toBeInstanceOf(BackendLoadError);
  });
  it("module without createBackend → error", async () => {
    const p = join(dir, "empty.mjs");
    writeFileSync(p, "export const x = 1;\n");
    await expect(loadBackend(p)).rejects.toThrow(/does not export createBackend/);
  });
  it("invalid manifest → error naming the manifest field", async () => {
    const p = join(dir, "badmanifest.mjs");
    writeFileSync(
      p,
      `export async function createBackend() { return { manifest: { name: "x", version: "1", precision: "float128", environment: "node", device: "", capabilities: [] } }; }\n`,
    );
    await expect(loadBackend(p)).rejects.toThrow(/manifest of backend[\s\S]*field "precision"/);
  });
  it("a backend from a path outside the workspace loads", async () => {
    const p = join(dir, "outside.mjs");
    writeFileSync(
      p,
      `export async function createBackend() { return { manifest: { name: "outside", version: "1", precision: "float64", environment: "node", device: "js", capabilities: [] } }; }\n`,
    );
    expect((await loadBackend(p)).manifest.name).toBe("outside");
  });
});

describe("nnspec conformance (CLI)", () => {
  const root = resolve(import.meta.dirname, "../..");
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [join(root, "conformance/bin/nnspec.js"), "conformance", ...args], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, NNSPEC_WORKBOOK: "" },
    });
  it("passes on the reference backend (exit 0) and prints the summary line", () => {
    const r = cli("--backend", "./backends/reference", "--only-fixtures", "--fixture", "fixtures/net222/lr-0.5.json");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/6 passed, 0 failed, 0 not implemented/);
  });
  it("an unloadable backend exits non-zero with a clear message", () => {
    const r = cli("--backend", "./does/not/exist");
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/backend path not found/);
  });
});
