import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BackendLoadError, loadBackend } from "@nnspec/conformance/node";
import { ROOT, runCli } from "./helpers/run-cli.ts";

/** Backends from outside the workspace: package folders, ESM-only "exports", TypeScript entries, npm names. */
const MANIFEST = (name: string) =>
  `{ name: "${name}", version: "1", precision: "float64", environment: "node", device: "js", capabilities: [] }`;

const cli = (args: string[], cwd: string) => runCli(args, cwd);

function writePackage(dir: string, pkg: Record<string, unknown>, files: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify(pkg));
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(dir, rel, ".."), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  return dir;
}

describe("loading backends from outside the workspace", () => {
  const work = mkdtempSync(join(tmpdir(), "nnspec-outside-"));

  // A TS backend in a package without "type": "module" (tsx would treat it as CommonJS: "Cannot require() ES
  // Module … in a cycle" before the fix), with a relative .ts import.
  const tsPkg = writePackage(
    join(work, "ts-backend"),
    { name: "ts-backend", version: "1.0.0", main: "src/index.ts" },
    {
      "src/index.ts": `import { device } from "./device.ts";\nexport async function createBackend(): Promise<unknown> { return { manifest: { ...${MANIFEST("ts-backend")}, device } }; }\n`,
      "src/device.ts": `export const device: string = "typescript";\n`,
    },
  );
  // ESM-only "exports" (no "require" condition): require.resolve cannot find it, ESM resolution can.
  const esmPkg = writePackage(
    join(work, "esm-only"),
    { name: "esm-only", type: "module", exports: { ".": { import: "./lib/entry.js" } } },
    {
      "lib/entry.js": `export async function createBackend() { return { manifest: ${MANIFEST("esm-only")} }; }\n`,
    },
  );
  // An installed npm package, resolvable only from the project folder (the cwd), not from the conformance package.
  const project = join(work, "project");
  writePackage(
    join(project, "node_modules/nnspec-backend-installed"),
    { name: "nnspec-backend-installed", type: "module", exports: { ".": { import: "./index.js" } } },
    {
      "index.js": `export async function createBackend() { return { manifest: ${MANIFEST("installed")} }; }\n`,
    },
  );
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "project", private: true }));

  it("a package folder with ESM-only exports loads (in-process)", async () => {
    expect((await loadBackend(esmPkg)).manifest.name).toBe("esm-only");
  });

  it("a package folder whose exports lack an import entry → BackendLoadError naming exports", async () => {
    const bad = writePackage(
      join(work, "cjs-only"),
      { name: "cjs-only", exports: { ".": { require: "./x.cjs" } } },
      { "x.cjs": "module.exports = {};\n" },
    );
    await expect(loadBackend(bad)).rejects.toThrow(BackendLoadError);
    await expect(loadBackend(bad)).rejects.toThrow(/"exports"/);
  });

  it("the CLI loads a TypeScript backend from a non-module package folder", async () => {
    const r = await cli(
      ["conformance", "--backend", tsPkg, "--only-fixtures", "--fixture", join(ROOT, "fixtures/net222/lr-0.5.json")],
      work,
    );
    expect(r.stderr).not.toMatch(/Cannot require\(\) ES Module/);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ts-backend 1 — float64, node, typescript/);
    expect(r.stdout).toMatch(/0 passed, 0 failed, 6 not implemented/);
  });

  it("the CLI resolves an npm package name from the current folder first", async () => {
    const r = await cli(
      [
        "conformance",
        "--backend",
        "nnspec-backend-installed",
        "--only-fixtures",
        "--fixture",
        join(ROOT, "fixtures/net222/lr-0.5.json"),
      ],
      project,
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/installed 1 — float64/);
  });

  it("an npm name that is installed nowhere → exit 2 and a message naming it", async () => {
    const r = await cli(["conformance", "--backend", "nnspec-backend-nowhere"], project);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/cannot load backend "nnspec-backend-nowhere"[\s\S]*give a package name or a path/);
  });
});
