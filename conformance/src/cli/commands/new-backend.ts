import type { Command } from "commander";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, rmdir, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { resolve as esmResolve } from "import-meta-resolve";
import { z } from "zod";
import { parseWith } from "@nnspec/spec";
import { UsageError } from "../run-main.ts";

/** npm's package-name rules (what `npm publish` accepts for a new package), optionally scoped. */
const NPM_NAME = /^(?:@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/;
const RESERVED = new Set(["node_modules", "favicon.ico"]);

export const packageNameSchema = z
  .string()
  .min(1, "empty name")
  .max(214, "npm names are at most 214 characters")
  .refine((n) => n === n.toLowerCase(), "npm names are lowercase")
  .refine((n) => !/^[._]/.test(n), "npm names cannot start with . or _")
  .refine((n) => !RESERVED.has(n), "reserved name")
  .refine((n) => NPM_NAME.test(n), "only lowercase letters, digits and - . _ ~ (an optional @scope/ in front)");

const optionsSchema = z.object({ name: packageNameSchema, dir: z.string().min(1).optional() });

/** The manifest's short name: the package name without scope and "nnspec-backend-"/"backend-" prefixes. */
export function manifestNameOf(pkgName: string): string {
  const bare = pkgName.replace(/^@[^/]+\//, "").replace(/^(nnspec-)?backend-/, "");
  const slug = bare.replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "");
  return slug === "" ? "backend" : slug;
}

/** Version of an installed @nnspec package (the scaffold depends on the versions this CLI ships with). */
function versionOf(pkg: string): string {
  let dir = dirname(fileURLToPath(esmResolve(pkg, import.meta.url)));
  for (;;) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      const json = parseWith(
        z.object({ name: z.string(), version: z.string() }).passthrough(),
        JSON.parse(readFileSync(file, "utf8")) as unknown,
        file,
      );
      if (json.name === pkg) return json.version;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the package.json of ${pkg}`);
    dir = up;
  }
}

export interface ScaffoldVersions {
  readonly spec: string;
  readonly conformance: string;
}

/** The scaffold's files, by relative path. Exported for the test that checks it against the suite. */
export function scaffoldFiles(pkgName: string, versions: ScaffoldVersions): Record<string, string> {
  const short = manifestNameOf(pkgName);
  const packageJson = {
    name: pkgName,
    version: "0.0.0",
    description: `nnspec backend "${short}"`,
    type: "module",
    license: "MIT",
    exports: { ".": "./src/index.ts" },
    engines: { node: ">=20" },
    scripts: {
      test: "vitest run",
      conformance: "nnspec conformance --backend .",
      "conformance:browser": "nnspec conformance --backend . --browser",
      typecheck: "tsc --noEmit",
    },
    peerDependencies: { "@nnspec/spec": `^${versions.spec}` },
    devDependencies: {
      "@nnspec/spec": `^${versions.spec}`,
      "@nnspec/conformance": `^${versions.conformance}`,
      "@types/node": "^20.19.0",
      typescript: "^5.9.3",
      vitest: "^3.2.4",
    },
  };
  const tsconfig = {
    compilerOptions: {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      lib: ["ES2022", "DOM"],
      strict: true,
      noUncheckedIndexedAccess: true,
      skipLibCheck: true,
      allowImportingTsExtensions: true,
      noEmit: true,
      verbatimModuleSyntax: true,
      types: ["node"],
    },
    include: ["src", "test"],
  };
  const index = `import type { Backend, Forward, Net222Config, Net222Ops } from "@nnspec/spec";

/**
 * The "${short}" nnspec backend. So far it claims one capability, net222.forward, and implements that one
 * operation; the suite reports every other check as "not implemented". See README.md for the next steps.
 */
export const VERSION = "0.0.0";

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

/** The 2-2-2 forward pass: two sigmoid layers sharing one bias each (b1 hidden, b2 output), squared error. */
async function forward(c: Net222Config): Promise<Forward> {
  const h1 = c.w1 * c.i1 + c.w2 * c.i2 + c.b1;
  const h2 = c.w3 * c.i1 + c.w4 * c.i2 + c.b1;
  const a_h1 = sigmoid(h1);
  const a_h2 = sigmoid(h2);
  const o1 = c.w5 * a_h1 + c.w6 * a_h2 + c.b2;
  const o2 = c.w7 * a_h1 + c.w8 * a_h2 + c.b2;
  const a_o1 = sigmoid(o1);
  const a_o2 = sigmoid(o2);
  const E1 = 0.5 * (c.t1 - a_o1) ** 2;
  const E2 = 0.5 * (c.t2 - a_o2) ** 2;
  return { h1, a_h1, h2, a_h2, o1, a_o1, o2, a_o2, E1, E2, E_total: E1 + E2 };
}

/** Operations not written yet: unclaimed, so the suite never calls them (it reports "not implemented"). */
const notImplemented = (op: string) => async (): Promise<never> => {
  throw new Error(\`\${op} is not implemented yet\`);
};

const net222: Net222Ops = {
  forward,
  gradients: notImplemented("net222.gradients"),
  step: notImplemented("net222.step"),
  train: notImplemented("net222.train"),
};

export async function createBackend(): Promise<Backend> {
  return {
    manifest: {
      name: ${JSON.stringify(short)},
      version: VERSION,
      precision: "float64",
      environment: typeof window === "undefined" ? "node" : "browser",
      device: "cpu, plain TypeScript",
      capabilities: ["net222.forward"],
    },
    net222,
  };
}
`;
  const test = `import { describeConformance } from "@nnspec/conformance/vitest";
import { createBackend } from "../src/index.ts";

// The whole nnspec suite: claimed capabilities must pass, the rest show up as "todo" (not implemented).
await describeConformance(${JSON.stringify(short)}, () => createBackend());
`;
  const browserTest = `import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

/** The \`nnspec\` command of the installed @nnspec/conformance (its package.json "bin"). */
function nnspecBin(): string {
  let dir = dirname(createRequire(import.meta.url).resolve("@nnspec/conformance"));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; bin?: { nnspec?: string } };
      if (pkg.name === "@nnspec/conformance" && pkg.bin?.nnspec) return join(dir, pkg.bin.nnspec);
    } catch {
      // No package.json here: look further up.
    }
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find the nnspec command of @nnspec/conformance");
    dir = up;
  }
}

// The same suite inside headless Chromium: needs an installed Chromium or Chrome (--chromium <path> or
// $NNSPEC_CHROMIUM if it is not in a usual place). In the page, the manifest says environment "browser".
it("passes the conformance suite in Chromium (nnspec conformance --backend . --browser)", async () => {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const r = await new Promise<{ code: number | null; output: string }>((done, fail) => {
    const child = spawn(process.execPath, [nnspecBin(), "conformance", "--backend", ".", "--browser"], { cwd: root, env: { ...process.env, NO_COLOR: "1" } });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => { output += d; });
    child.stderr.setEncoding("utf8").on("data", (d: string) => { output += d; });
    child.on("error", fail);
    child.on("close", (code) => done({ code, output }));
  });
  expect(r.code, r.output.slice(-3000)).toBe(0);
  expect(r.output).toMatch(/, browser\\) — \\d+ checks/);
  expect(r.output).toMatch(/[1-9]\\d* passed, 0 failed, \\d+ not implemented/);
}, 600_000);
`;
  const readme = `# ${pkgName}

An [nnspec](https://www.npmjs.com/package/@nnspec/conformance) backend, scaffolded by \`nnspec new-backend\`.
It implements one operation, the 2-2-2 forward pass (\`net222.forward\`); every other conformance check reports
"not implemented".

## Run the suite

\`\`\`sh
npm install
npx nnspec conformance --backend .   # every check: pass / FAIL / not implemented
npm run conformance:browser           # the same, inside headless Chromium (nnspec conformance --backend . --browser)
npm test                              # the suite through vitest (test/conformance.test.ts), and in Chromium (test/browser.test.ts)
\`\`\`

The browser run needs an installed Chromium or Chrome (nothing is downloaded): give \`--chromium <path>\` or set
\`NNSPEC_CHROMIUM\` if it is not in a usual place. In the page your manifest must say \`environment: "browser"\`
(\`src/index.ts\` decides by \`typeof window\`). If your backend is Node-only, delete \`test/browser.test.ts\`.

## Next steps

1. Implement the next capability in \`src/index.ts\` (\`net222.gradients\`, then \`net222.step\`, \`net222.train\`,
   then the CNN's \`cnn.forward\`, \`cnn.backward\`, \`cnn.step\`, \`cnn.dropout\`), and add it to
   \`manifest.capabilities\` only once it is written: a claimed capability must pass every one of its checks.
2. Declare your precision honestly (\`float64\` or \`float32\`): the tolerance the suite applies follows it.
3. Keep it running in a browser (\`npm run conformance:browser\`): no \`node:\` imports at top level, Node-only
   parts imported lazily behind an environment check.
4. Before publishing, build \`src/\` to JavaScript and point \`exports\` at the build.

The full guide: docs/adding-a-backend.md in the nnspec repository.
`;
  return {
    "package.json": `${JSON.stringify(packageJson, null, 2)}\n`,
    "tsconfig.json": `${JSON.stringify(tsconfig, null, 2)}\n`,
    "src/index.ts": index,
    "test/conformance.test.ts": test,
    "test/browser.test.ts": browserTest,
    "README.md": readme,
    ".gitignore": "node_modules/\ndist/\n",
  };
}

/**
 * Write the scaffold to `<dir>/<unscoped name>`: all files go into a temporary sibling folder first, which is then
 * renamed into place, so a failure never leaves a half-written package. A non-empty target is never touched.
 */
export async function scaffoldBackend(
  pkgName: string,
  parentDir: string,
  versions?: ScaffoldVersions,
): Promise<string> {
  const target = resolve(parentDir, pkgName.replace(/^@[^/]+\//, ""));
  if (existsSync(target)) {
    if (!statSync(target).isDirectory()) throw new UsageError(`${target} exists and is not a folder`);
    if (readdirSync(target).length > 0) throw new UsageError(`${target} is not empty; refusing to overwrite it`);
  }
  const files = scaffoldFiles(
    pkgName,
    versions ?? { spec: versionOf("@nnspec/spec"), conformance: versionOf("@nnspec/conformance") },
  );
  await mkdir(dirname(target), { recursive: true });
  const tmp = await mkdtemp(join(dirname(target), ".nnspec-new-backend-"));
  try {
    for (const [rel, text] of Object.entries(files)) {
      await mkdir(dirname(join(tmp, rel)), { recursive: true });
      await writeFile(join(tmp, rel), text);
    }
    if (existsSync(target)) await rmdir(target); // empty (checked above)
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return target;
}

export function registerNewBackend(program: Command): void {
  program
    .command("new-backend")
    .description("scaffold a backend package: claims net222.forward, implements it, wired to the conformance suite")
    .argument("<name>", "npm package name, e.g. nnspec-backend-mine or @me/nnspec-backend-mine")
    .option("--dir <path>", "create the package folder inside this folder", ".")
    .action(async (name: unknown, raw: { dir?: unknown }) => {
      const o = parseWith(optionsSchema, { name, dir: raw.dir }, "nnspec new-backend arguments");
      const target = await scaffoldBackend(o.name, o.dir ?? ".");
      const rel = relative(process.cwd(), target);
      const shown = rel === "" ? "." : rel.startsWith("..") ? target : rel;
      console.log(`created ${target}`);
      console.log(`next: cd ${shown} && npm install && npx nnspec conformance --backend .`);
    });
}
