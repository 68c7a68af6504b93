#!/usr/bin/env node
// CI rule: a change to what a published package ships comes with a changeset naming that package.
//
// Compares the working tree against a base commit: $NNSPEC_CHANGESET_BASE if set; else the merge base with
// origin/<baseBranch> when HEAD is not on it (a branch / pull request); else HEAD's parent (a commit on main); and on
// a root commit, the empty tree (the initial history, whose .changeset/*.md name every package for the first release).
// A package "changed" when a file it publishes changed: anything under src/, a "files" entry, README/LICENSE, or
// package.json other than its "version" (so `pnpm version-packages` commits, which bump versions, write CHANGELOG.md
// and delete the consumed changesets, pass). Tests, benches and build config do not count. A changeset counts when
// it was added or edited since the base. Exit 0: every changed package is named; 1: some are not (listed); 2: usage.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
const root = process.cwd();

function git(...args) {
  return execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}
function tryGit(...args) {
  try {
    return git(...args);
  } catch {
    return undefined;
  }
}

function fail(message, code = 2) {
  console.error(`check-changeset: ${message}`);
  process.exit(code);
}

/** The base to compare against, and why it was chosen. */
function chooseBase() {
  const env = process.env.NNSPEC_CHANGESET_BASE;
  if (env) {
    const sha = tryGit("rev-parse", "--verify", `${env}^{commit}`);
    if (!sha) fail(`NNSPEC_CHANGESET_BASE=${env} is not a commit`);
    return { base: sha, why: `NNSPEC_CHANGESET_BASE=${env}` };
  }
  const config = JSON.parse(readFileSync(join(root, ".changeset/config.json"), "utf8"));
  const branch = typeof config.baseBranch === "string" ? config.baseBranch : "main";
  const head = git("rev-parse", "HEAD");
  const remote = tryGit("rev-parse", "--verify", `origin/${branch}^{commit}`);
  if (remote) {
    const mergeBase = tryGit("merge-base", "HEAD", remote);
    if (mergeBase && mergeBase !== head) return { base: mergeBase, why: `merge base with origin/${branch}` };
  }
  const parent = tryGit("rev-parse", "--verify", "HEAD^1^{commit}");
  if (parent) return { base: parent, why: "HEAD's parent" };
  if (tryGit("rev-parse", "--is-shallow-repository") === "true") {
    fail("shallow clone without HEAD's parent: fetch more history (git fetch --deepen=1) or set NNSPEC_CHANGESET_BASE");
  }
  return { base: EMPTY_TREE, why: "root commit (initial history)" };
}

/** Workspace packages from pnpm-workspace.yaml (plain entries and trailing "/*" globs), published ones only. */
function publishedPackages() {
  const yaml = readFileSync(join(root, "pnpm-workspace.yaml"), "utf8");
  const block = /^packages:\s*\n((?:[ \t]+-[^\n]*\n?)+)/m.exec(yaml);
  if (!block) fail("pnpm-workspace.yaml has no packages list");
  const patterns = [...block[1].matchAll(/-\s*["']?([^"'\s#]+)["']?/g)].map((m) => m[1]);
  const dirs = patterns.flatMap((p) => {
    if (!p.endsWith("/*")) return [p];
    const parent = p.slice(0, -2);
    return existsSync(join(root, parent))
      ? readdirSync(join(root, parent), { withFileTypes: true })
          .filter((e) => e.isDirectory())
          .map((e) => `${parent}/${e.name}`)
      : [];
  });
  return dirs
    .filter((d) => existsSync(join(root, d, "package.json")))
    .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8")) }))
    .filter(({ pkg }) => pkg.private !== true && typeof pkg.name === "string");
}

/** `files` entries as matchers: a folder matches everything below it; `*` matches within one path segment. */
function matcher(entry) {
  const clean = entry.replace(/^\.\//, "").replace(/\/$/, "");
  const re = new RegExp(
    `^${clean
      .split("*")
      .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join("[^/]*")}(/.*)?$`,
  );
  return (rel) => re.test(rel);
}

function publishes(pkg, rel) {
  if (rel.startsWith("src/") || /^(README|LICENSE)(\.md)?$/i.test(rel)) return true;
  return (pkg.files ?? []).some((entry) => matcher(entry)(rel));
}

/** package.json changed in more than its "version" (version bumps come from `changeset version`). */
function manifestChanged(base, dir) {
  const before = base === EMPTY_TREE ? undefined : tryGit("show", `${base}:${dir}/package.json`);
  if (before === undefined) return true;
  const strip = (text) => {
    const { version: _version, ...rest } = JSON.parse(text);
    return JSON.stringify(rest);
  };
  return strip(before) !== strip(readFileSync(join(root, dir, "package.json"), "utf8"));
}

/** Package names in a changeset's front matter (`"@scope/name": patch|minor|major`). */
function namedIn(file) {
  const text = readFileSync(join(root, file), "utf8");
  const fm = /^---\r?\n([\s\S]*?)\r?\n---/.exec(text);
  if (!fm) fail(`${file}: no front matter (--- "package": patch|minor|major ---)`);
  return fm[1]
    .split(/\r?\n/)
    .filter((l) => l.trim() !== "")
    .map((line) => {
      const m = /^\s*["']?([^"':]+)["']?\s*:\s*(major|minor|patch|none)\s*$/.exec(line);
      if (!m) fail(`${file}: front matter line ${JSON.stringify(line)} is not "<package>": patch|minor|major`);
      return m[1];
    });
}

if (tryGit("rev-parse", "--is-inside-work-tree") !== "true")
  fail(`${root} is not a git work tree: the rule compares against a base commit`);
const { base, why } = chooseBase();
const changed = new Set(
  [
    ...git("diff", "--name-only", base).split("\n"),
    ...git("ls-files", "--others", "--exclude-standard").split("\n"),
  ].filter(Boolean),
);

const packages = publishedPackages();
const known = new Set(packages.map((p) => p.pkg.name));
const changesets = [...changed].filter(
  (f) => /^\.changeset\/[^/]+\.md$/.test(f) && !/README\.md$/i.test(f) && existsSync(join(root, f)),
);
const named = new Set();
for (const file of changesets) {
  for (const name of namedIn(file)) {
    if (!known.has(name))
      fail(`${file} names "${name}", which is not a published workspace package (${[...known].join(", ")})`);
    named.add(name);
  }
}

const missing = [];
for (const { dir, pkg } of packages) {
  const files = [...changed].filter((f) => f.startsWith(`${dir}/`)).map((f) => f.slice(dir.length + 1));
  const shipped = files.filter((rel) => (rel === "package.json" ? manifestChanged(base, dir) : publishes(pkg, rel)));
  if (shipped.length > 0 && !named.has(pkg.name)) missing.push({ name: pkg.name, files: shipped });
}

const shortBase = base === EMPTY_TREE ? "the empty tree" : base.slice(0, 10);
if (missing.length > 0) {
  console.error(
    `check-changeset: compared with ${shortBase} (${why}); published packages changed without a changeset:`,
  );
  for (const m of missing)
    console.error(
      `  ${m.name}: ${m.files.slice(0, 5).join(", ")}${m.files.length > 5 ? `, … (${m.files.length} files)` : ""}`,
    );
  console.error("add one with `pnpm changeset` (it writes .changeset/<name>.md naming the package and the bump)");
  process.exit(1);
}
console.log(
  `check-changeset: ok — compared with ${shortBase} (${why}); ${changesets.length} changeset(s) name ${[...named].sort().join(", ") || "nothing"}`,
);
