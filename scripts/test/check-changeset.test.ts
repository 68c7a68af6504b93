import { spawn } from "node:child_process";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

/** The changeset rule on a throwaway git repository shaped like this workspace, commit by commit. */
const SCRIPT = resolve(import.meta.dirname, "../check-changeset.mjs");

const repo = mkdtempSync(join(tmpdir(), "nnspec-changeset-"));
const git = (...args: string[]) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", ...args], {
    cwd: repo,
    encoding: "utf8",
  });

function write(rel: string, text: string): void {
  mkdirSync(dirname(join(repo, rel)), { recursive: true });
  writeFileSync(join(repo, rel), text);
}
function commit(message: string): void {
  git("add", "-A");
  git("commit", "-q", "--allow-empty", "-m", message);
}
const changeset = (pkg: string, bump = "patch") => `---\n"${pkg}": ${bump}\n---\n\nA change.\n`;

function check(env: Record<string, string> = {}): Promise<{ status: number | null; out: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [SCRIPT], {
      cwd: repo,
      env: { ...process.env, ...env, NNSPEC_CHANGESET_BASE: env.NNSPEC_CHANGESET_BASE ?? "" },
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    child.on("error", fail);
    child.on("close", (status) => done({ status, out }));
  });
}

function pkgJson(name: string, version: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ name, version, type: "module", files: ["dist", "golden/*.json"], ...extra }, null, 2);
}

describe("scripts/check-changeset.mjs", () => {
  git("init", "-q", "-b", "main");
  write("pnpm-workspace.yaml", "packages:\n  - spec\n  - backends/*\n");
  write(".changeset/config.json", JSON.stringify({ baseBranch: "main", fixed: [], linked: [] }));
  write(".changeset/README.md", "# Changesets\n");
  write("package.json", JSON.stringify({ name: "root", private: true }));
  write("spec/package.json", pkgJson("@x/spec", "0.1.0"));
  write("spec/src/index.ts", "export const a = 1;\n");
  write("backends/one/package.json", pkgJson("@x/one", "0.1.0"));
  write("backends/one/src/index.ts", "export const b = 1;\n");
  write("backends/private/package.json", JSON.stringify({ name: "@x/private", private: true }));

  it("initial history: a root commit whose changesets name every package passes; one missing fails", async () => {
    write(".changeset/initial-spec.md", changeset("@x/spec"));
    commit("initial");
    const bad = await check();
    expect(bad.status).toBe(1);
    expect(bad.out).toMatch(/@x\/one: .*src\/index\.ts/);
    expect(bad.out).not.toMatch(/@x\/spec:/);
    write(".changeset/initial-one.md", changeset("@x/one"));
    git("add", "-A");
    git("commit", "-q", "--amend", "--no-edit");
    const ok = await check();
    expect(ok.status, ok.out).toBe(0);
    expect(ok.out).toMatch(/root commit/);
  });

  it("a later source change without a changeset fails, naming the package and file", async () => {
    write("spec/src/index.ts", "export const a = 2;\n");
    commit("change spec");
    const r = await check();
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/@x\/spec: src\/index\.ts/);
    expect(r.out).toMatch(/HEAD's parent/);
  });

  it("the same change with a changeset naming the package passes (uncommitted files count too)", async () => {
    write(".changeset/spec-a.md", changeset("@x/spec", "minor"));
    expect((await check()).status).toBe(0);
    commit("changeset");
    // Now the changeset is HEAD's change and the source change is in HEAD^: compare across both.
    expect((await check({ NNSPEC_CHANGESET_BASE: "HEAD~2" })).status).toBe(0);
  });

  it("tests, build config and private packages need no changeset; shipped golden files do", async () => {
    write("spec/test/a.test.ts", "// test\n");
    write("spec/tsconfig.build.json", "{}\n");
    write("backends/private/src/index.ts", "export {};\n");
    commit("tests");
    expect((await check()).status).toBe(0);
    write("backends/one/golden/case.json", "{}\n");
    commit("golden");
    const r = await check();
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/@x\/one: golden\/case\.json/);
  });

  it("a version-packages commit (versions, CHANGELOG, consumed changesets) passes; other package.json edits do not", async () => {
    write(".changeset/one-golden.md", changeset("@x/one"));
    commit("changeset for golden");
    for (const [dir, name] of [
      ["spec", "@x/spec"],
      ["backends/one", "@x/one"],
    ] as const) {
      write(`${dir}/package.json`, pkgJson(name, "0.2.0"));
      write(`${dir}/CHANGELOG.md`, `# ${name}\n\n## 0.2.0\n`);
    }
    rmSync(join(repo, ".changeset/spec-a.md"));
    rmSync(join(repo, ".changeset/one-golden.md"));
    commit("version packages");
    expect((await check()).status).toBe(0);
    const pkg = JSON.parse(readFileSync(join(repo, "spec/package.json"), "utf8")) as Record<string, unknown>;
    write("spec/package.json", JSON.stringify({ ...pkg, dependencies: { zod: "^3" } }, null, 2));
    const r = await check();
    expect(r.status).toBe(1);
    expect(r.out).toMatch(/@x\/spec: package\.json/);
  });

  it("a changeset naming an unknown package is a usage error", async () => {
    write(".changeset/typo.md", changeset("@x/spce"));
    const r = await check();
    expect(r.status).toBe(2);
    expect(r.out).toMatch(/names "@x\/spce", which is not a published workspace package/);
  });
});
