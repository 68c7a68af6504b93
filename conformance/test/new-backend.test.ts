import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CAPABILITIES, manifestSchema } from "@nnspec/spec";
import { collectChecks, runChecks, tally } from "@nnspec/conformance";
import { loadBackend } from "@nnspec/conformance/node";
import { manifestNameOf, packageNameSchema, scaffoldBackend } from "../src/cli/commands/new-backend.ts";
import { ROOT, runCli } from "./helpers/run-cli.ts";

const cli = (args: string[], cwd = ROOT) => runCli(args, cwd);

describe("nnspec new-backend: names", () => {
  it.each(["demo", "nnspec-backend-x", "@me/nnspec-backend-mine", "a.b_c~d"])("accepts the npm name %s", (n) => {
    expect(packageNameSchema.safeParse(n).success).toBe(true);
  });
  it.each(["", "Demo", "_x", ".x", "a b", "a/b", "@scope", "node_modules", "x".repeat(215)])("rejects %j", (n) => {
    expect(packageNameSchema.safeParse(n).success).toBe(false);
  });
  it("derives a manifest name the manifest schema accepts", () => {
    for (const [pkg, short] of [
      ["@me/nnspec-backend-mine", "mine"],
      ["backend-fast", "fast"],
      ["a.b_c~d", "a-b-c-d"],
      ["~", "backend"],
    ] as const) {
      expect(manifestNameOf(pkg)).toBe(short);
      expect(manifestSchema.shape.name.safeParse(manifestNameOf(pkg)).success).toBe(true);
    }
  });
});

describe("nnspec new-backend: the scaffold", () => {
  const dir = mkdtempSync(join(tmpdir(), "nnspec-new-backend-"));

  it("loads, claims only net222.forward, passes its checks and leaves the rest not implemented", async () => {
    const target = await scaffoldBackend("@me/nnspec-backend-demo", dir, { spec: "1.2.3", conformance: "4.5.6" });
    expect(target).toBe(join(dir, "nnspec-backend-demo"));
    const pkg = JSON.parse(readFileSync(join(target, "package.json"), "utf8")) as {
      peerDependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    expect(pkg.peerDependencies["@nnspec/spec"]).toBe("^1.2.3");
    expect(pkg.devDependencies["@nnspec/conformance"]).toBe("^4.5.6");
    const backend = await loadBackend(target);
    expect(backend.manifest.capabilities).toEqual(["net222.forward"]);
    const checks = await collectChecks({ precision: backend.manifest.precision });
    const results = await runChecks(backend, checks);
    const t = tally(results);
    expect(t.failed).toBe(0);
    expect(t.passed).toBe(checks.filter((c) => c.capability === "net222.forward").length);
    expect(t.passed).toBeGreaterThan(0);
    expect(t.notImplemented).toBe(checks.filter((c) => c.capability !== "net222.forward").length);
    expect(new Set(checks.map((c) => c.capability)).size).toBe(CAPABILITIES.length);
  });

  it("the CLI scaffolds, runs conformance on it, and refuses a non-empty folder", async () => {
    const made = await cli(["new-backend", "demo", "--dir", dir]);
    expect(made.status, made.stderr).toBe(0);
    expect(readdirSync(join(dir, "demo")).sort()).toEqual([
      ".gitignore",
      "README.md",
      "package.json",
      "src",
      "test",
      "tsconfig.json",
    ]);
    // The suite through vitest in Node, and the browser run (`nnspec conformance --backend . --browser`) as a test.
    expect(readdirSync(join(dir, "demo", "test")).sort()).toEqual(["browser.test.ts", "conformance.test.ts"]);
    const scripts = (
      JSON.parse(readFileSync(join(dir, "demo", "package.json"), "utf8")) as { scripts: Record<string, string> }
    ).scripts;
    expect(scripts["conformance:browser"]).toBe("nnspec conformance --backend . --browser");
    expect(readFileSync(join(dir, "demo", "README.md"), "utf8")).toMatch(/npm run conformance:browser/);
    const r = await cli(["conformance", "--backend", join(dir, "demo")]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/[1-9]\d* passed, 0 failed, [1-9]\d* not implemented/);
    const again = await cli(["new-backend", "demo", "--dir", dir]);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/not empty; refusing to overwrite/);
  });

  it("an empty existing folder is filled; a bad name is a usage error naming the field", async () => {
    mkdirSync(join(dir, "empty"));
    await scaffoldBackend("empty", dir, { spec: "0.1.0", conformance: "0.1.0" });
    expect(readdirSync(join(dir, "empty"))).toContain("package.json");
    writeFileSync(join(dir, "file"), "x");
    await expect(scaffoldBackend("file", dir, { spec: "0.1.0", conformance: "0.1.0" })).rejects.toThrow(/not a folder/);
    const bad = await cli(["new-backend", "Bad Name", "--dir", dir]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/field "name"/);
    // Nothing half-written is left behind.
    expect(readdirSync(dir).filter((f) => f.startsWith(".nnspec-new-backend-"))).toEqual([]);
  });
});
