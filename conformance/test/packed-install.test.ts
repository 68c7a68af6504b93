import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The packages as a user gets them: build, `pnpm pack` (publishConfig applied, workspace: ranges rewritten), then
 * `npm install` the tarballs into a fresh project outside the workspace — no workspace links, no tsx registered —
 * and run the published `nnspec` bin there. Needs the npm registry for third-party dependencies (zod, commander…).
 */
const ROOT = resolve(import.meta.dirname, "../..");
const PACKAGES = ["spec", "fixtures", "conformance", "backends/reference"];

/** The child must not think it runs inside this vitest worker or this pnpm script. */
function cleanEnv(): NodeJS.ProcessEnv {
  const keep = /^npm_config_(registry|cache|userconfig|https?_proxy|proxy|noproxy|strict_ssl|cafile)$/i;
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) =>
        !k.startsWith("VITEST") &&
        k !== "NODE_OPTIONS" &&
        k !== "FORCE_COLOR" &&
        !(k.startsWith("npm_") && !keep.test(k)),
    ),
  );
}

interface Ran {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Spawn without blocking: a synchronous child would starve the vitest worker's RPC with the main process. */
function run(cmd: string, args: string[], cwd: string, timeoutMs = 180_000): Promise<Ran> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...cleanEnv(), NNSPEC_WORKBOOK: "", NO_COLOR: "1" },
      timeout: timeoutMs,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "",
      stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", fail);
    child.on("close", (status) => done({ status, stdout, stderr }));
  });
}

async function must(pending: Promise<Ran>, what: string): Promise<string> {
  const r = await pending;
  if (r.status !== 0)
    throw new Error(`${what} failed (exit ${r.status}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  return r.stdout;
}

/** The CLI's summary line, as numbers. */
function summary(stdout: string): { passed: number; failed: number; notImplemented: number } {
  const m = /(\d+) passed, (\d+) failed, (\d+) not implemented/.exec(stdout);
  if (!m) throw new Error(`no summary line in:\n${stdout.slice(-2000)}`);
  return { passed: Number(m[1]), failed: Number(m[2]), notImplemented: Number(m[3]) };
}

/** An entry of npm's hidden lockfile (node_modules/.package-lock.json): what npm installed, and why. */
interface Installed {
  readonly version?: string;
  readonly dependencies?: Record<string, string>;
  readonly optionalDependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
  readonly peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  readonly os?: string[];
  readonly cpu?: string[];
}

/** The package name at an install location ("node_modules/a/node_modules/@s/b" → "@s/b"). */
const nameAt = (key: string) => key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length);

/**
 * Every install location reachable from `start` through dependencies, optional dependencies and required peers
 * (npm installs those) — not devDependencies, not optional peers — resolved as Node does (nearest node_modules).
 */
function installClosure(lock: Record<string, Installed>, start: string): Set<string> {
  const locate = (from: string, name: string): string | undefined => {
    for (let base = from; ; ) {
      const key = `${base}/node_modules/${name}`.replace(/^\//, "");
      if (lock[key]) return key;
      if (base === "") return undefined;
      const i = base.lastIndexOf("/node_modules/");
      base = i < 0 ? "" : base.slice(0, i);
    }
  };
  const seen = new Set<string>([start]);
  const queue = [start];
  for (let key = queue.pop(); key !== undefined; key = queue.pop()) {
    const e = lock[key]!;
    const peers = Object.keys(e.peerDependencies ?? {}).filter((p) => !e.peerDependenciesMeta?.[p]?.optional);
    for (const dep of [...Object.keys(e.dependencies ?? {}), ...Object.keys(e.optionalDependencies ?? {}), ...peers]) {
      const at = locate(key, dep);
      if (at && !seen.has(at)) {
        seen.add(at);
        queue.push(at);
      }
    }
  }
  return seen;
}

/** Compiled native code shipped in a package folder (its own files, not nested node_modules). */
function nativeFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    if (d.name === "node_modules") return [];
    const p = join(dir, d.name);
    return d.isDirectory() ? nativeFiles(p) : d.name.endsWith(".node") ? [p] : [];
  });
}

const work = mkdtempSync(join(tmpdir(), "nnspec-packed-"));
const packs = join(work, "packs");
const project = join(work, "project");
const nnspec = (args: string[], cwd = project) => run(join(project, "node_modules/.bin/nnspec"), args, cwd);

beforeAll(async () => {
  const filters = PACKAGES.flatMap((p) => ["--filter", `./${p}`]);
  await must(run("pnpm", [...filters, "run", "build"], ROOT), "pnpm build");
  mkdirSync(packs);
  for (const p of PACKAGES)
    await must(run("pnpm", ["pack", "--pack-destination", packs], join(ROOT, p)), `pnpm pack in ${p}`);
  mkdirSync(project);
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "outside-project", private: true, type: "module" }, null, 2),
  );
  const tarballs = readdirSync(packs)
    .filter((f) => f.endsWith(".tgz"))
    .map((f) => join(packs, f));
  expect(tarballs).toHaveLength(PACKAGES.length);
  // vitest and @types/node: to run the scaffold's test file and type-check it against the published .d.ts files.
  await must(
    run(
      "npm",
      ["install", "--no-audit", "--no-fund", "--loglevel=error", ...tarballs, "vitest@3.2.4", "@types/node@20.19.43"],
      project,
    ),
    "npm install",
  );
}, 300_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("packed packages installed outside the workspace", () => {
  it("the judge's own install closure is small and pure JavaScript (beyond what vitest brings)", () => {
    const lock = (
      JSON.parse(readFileSync(join(project, "node_modules/.package-lock.json"), "utf8")) as {
        packages: Record<string, Installed>;
      }
    ).packages;
    const judge = installClosure(lock, "node_modules/@nnspec/conformance");
    const vitest = installClosure(lock, "node_modules/vitest");
    const own = [...judge].filter((k) => !vitest.has(k) && !nameAt(k).startsWith("@nnspec/")).sort();
    const names = own.map((k) => `${nameAt(k)}@${lock[k]!.version ?? "?"}`);
    console.log(`judge install closure beyond vitest: ${own.length} third-party package(s): ${names.join(", ")}`);
    expect(own.length).toBeLessThanOrEqual(25);
    const forbidden = own
      .map(nameAt)
      .filter((n) => ["vega", "vega-lite", "exceljs", "tsx"].includes(n) || n.startsWith("@resvg/"));
    expect(forbidden).toEqual([]);
    const native = own.flatMap((k) => {
      const pkg = JSON.parse(readFileSync(join(project, k, "package.json"), "utf8")) as {
        os?: unknown;
        cpu?: unknown;
        gypfile?: unknown;
      };
      const why = [
        ...((lock[k]!.os ?? pkg.os) ? ["os"] : []),
        ...((lock[k]!.cpu ?? pkg.cpu) ? ["cpu"] : []),
        ...(pkg.gypfile ? ["gypfile"] : []),
        ...(existsSync(join(project, k, "binding.gyp")) ? ["binding.gyp"] : []),
        ...nativeFiles(join(project, k)),
      ];
      return why.length > 0 ? [`${nameAt(k)}: ${why.join(", ")}`] : [];
    });
    expect(native).toEqual([]);
  });

  it("npx nnspec conformance --backend @nnspec/backend-reference passes every check (compiled JS, no tsx)", async () => {
    const r = await nnspec(["conformance", "--backend", "@nnspec/backend-reference"]);
    expect(r.status, r.stderr).toBe(0);
    const s = summary(r.stdout);
    expect(s.failed).toBe(0);
    expect(s.notImplemented).toBe(0);
    expect(s.passed).toBeGreaterThan(100);
    // The CNN ran on the compiled conv worker (2 threads where the machine has 2 cores).
    expect(r.stdout).toMatch(/reference 0\.\d+\.\d+ — float64, node/);
    // What was installed is the publish form: dist entry points, version ranges, no tsx on the run path.
    const installed = (p: string) =>
      JSON.parse(readFileSync(join(project, "node_modules", p, "package.json"), "utf8")) as Record<
        string,
        Record<string, unknown> | undefined
      >;
    const reference = installed("@nnspec/backend-reference");
    expect(reference.exports?.["."]).toEqual({ types: "./dist/index.d.ts", default: "./dist/index.js" });
    // Every entry (the root and any subpath) is compiled JavaScript from dist/, never a .ts source.
    for (const entry of Object.values(reference.exports ?? {}))
      expect(JSON.stringify(entry)).toMatch(/^\{"types":"\.\/dist\/[^"]+\.d\.ts","default":"\.\/dist\/[^"]+\.js"\}$/);
    expect(reference.peerDependencies?.["@nnspec/spec"]).toMatch(/^\^\d+\.\d+\.\d+$/);
    expect(reference.dependencies?.tsx).toBeUndefined();
    expect(installed("@nnspec/conformance").bin).toEqual({ nnspec: "./bin/nnspec-dist.js" });
    expect(readFileSync(join(project, "node_modules/@nnspec/conformance/bin/nnspec-dist.js"), "utf8")).not.toMatch(
      /tsx/,
    );
  });

  it("nnspec conformance --browser runs the published page in Chromium (the reference backend, two goldens)", async () => {
    const goldens = join(project, "node_modules/@nnspec/fixtures");
    const r = await nnspec([
      "conformance",
      "--backend",
      "@nnspec/backend-reference",
      "--browser",
      "--only-fixtures",
      "--fixture",
      join(goldens, "net222/lr-0.5.json"),
      "--fixture",
      join(goldens, "cnn/batch2-seed7.json"),
    ]);
    expect(r.status, r.stdout.slice(-2000) + r.stderr).toBe(0);
    const s = summary(r.stdout);
    expect(s.failed).toBe(0);
    expect(s.passed).toBeGreaterThan(100);
    expect(r.stdout).toMatch(/reference 0\.\d+\.\d+ — float64, browser/);
    // The page is the compiled one from the tarball's dist/.
    expect(existsSync(join(project, "node_modules/@nnspec/conformance/dist/browser-run/page.js"))).toBe(true);
  });

  it("--backend ./path to an unpacked backend package works", async () => {
    const dir = join(project, "unpacked");
    mkdirSync(dir);
    const tgz = readdirSync(packs).find((f) => f.startsWith("nnspec-backend-reference-"))!;
    await must(run("tar", ["xzf", join(packs, tgz), "-C", dir], project), "tar");
    const goldens = join(project, "node_modules/@nnspec/fixtures");
    const r = await nnspec([
      "conformance",
      "--backend",
      "./unpacked/package",
      "--precision",
      "float32",
      "--only-fixtures",
      "--fixture",
      join(goldens, "net222/lr-0.5.json"),
      "--fixture",
      join(goldens, "cnn/batch2-seed7.json"),
    ]);
    expect(r.status, r.stderr).toBe(0);
    const s = summary(r.stdout);
    expect(s.failed).toBe(0);
    expect(s.passed).toBeGreaterThan(10);
    expect(r.stdout).toMatch(/float32/);
  });

  describe("nnspec new-backend", () => {
    it("scaffolds a package whose conformance run passes net222.forward and reports the rest not implemented", async () => {
      await must(nnspec(["new-backend", "demo", "--dir", project]), "nnspec new-backend");
      const r = await nnspec(["conformance", "--backend", "./demo"]);
      expect(r.status, r.stderr).toBe(0);
      const s = summary(r.stdout);
      expect(s.failed).toBe(0);
      expect(s.passed).toBeGreaterThan(0);
      expect(s.notImplemented).toBeGreaterThan(s.passed);
      const passed = r.stdout.split("\n").filter((l) => /\] pass\b/.test(l));
      expect(
        passed.every((l) => /net222\.[^ ]*forward|forward\./.test(l)),
        passed.join("\n"),
      ).toBe(true);
    });

    it("the scaffold passes its conformance run in Chromium too (--browser)", async () => {
      const r = await nnspec(["conformance", "--backend", "./demo", "--browser"]);
      expect(r.status, r.stdout.slice(-2000) + r.stderr).toBe(0);
      const s = summary(r.stdout);
      expect(s.failed).toBe(0);
      expect(s.passed).toBeGreaterThan(0);
      expect(s.notImplemented).toBeGreaterThan(s.passed);
      expect(r.stdout).toMatch(/^conformance: demo \(float64, browser\) — \d+ checks$/m);
    });

    it("refuses to overwrite a non-empty folder", async () => {
      const r = await nnspec(["new-backend", "demo", "--dir", project]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/not empty; refusing to overwrite/);
    });

    it("the scaffold's vitest files run the suite in Node and in Chromium (claimed checks pass, the rest are todo)", async () => {
      const r = await run(join(project, "node_modules/.bin/vitest"), ["run"], join(project, "demo"));
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/Test Files\s+2 passed/);
      expect(r.stdout).toMatch(/Tests\s+\d+ passed \| \d+ todo/);
    });

    it("the scaffold type-checks against the published .d.ts files", async () => {
      const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
      const r = await run(process.execPath, [tsc, "-p", join(project, "demo")], project);
      expect(r.status, r.stdout + r.stderr).toBe(0);
    });
  });
});
