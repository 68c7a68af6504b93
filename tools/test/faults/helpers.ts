import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { expect } from "vitest";
import { MNIST_FILES } from "../../src/data/index.ts";

/** Shared by the fault-injection tests: the real CLI in a child process, tiny MNIST settings, file snapshots. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const bin = join(repoRoot, "tools/bin/nnspec.js");
export const mnistDir = [process.env.MNIST_DIR, resolve(repoRoot, "../shared/data/mnist")].find(
  (d) => d && existsSync(join(d, MNIST_FILES.trainImages.name)),
);

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Start `nnspec …`; `waitFor` resolves when the combined output matches. */
export function start(
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; done: Promise<Run>; waitFor(re: RegExp): Promise<void> } {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: "1", NNSPEC_DEBUG: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "",
    stderr = "";
  const waiters: Array<{ re: RegExp; ok: () => void }> = [];
  const check = () => {
    for (const w of [...waiters])
      if (w.re.test(stdout + stderr)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.ok();
      }
  };
  child.stdout!.setEncoding("utf8").on("data", (s: string) => {
    stdout += s;
    check();
  });
  child.stderr!.setEncoding("utf8").on("data", (s: string) => {
    stderr += s;
    check();
  });
  const done = new Promise<Run>((ok) => child.on("close", (code, signal) => ok({ code, signal, stdout, stderr })));
  return {
    child,
    done,
    waitFor: (re) =>
      new Promise<void>((ok, fail) => {
        waiters.push({ re, ok });
        check();
        void done.then((r) => fail(new Error(`exited (${r.code}) before ${re}:\n${r.stdout}\n${r.stderr}`)));
      }),
  };
}

/** Run `nnspec …` to the end (killed after `timeoutMs`). */
export async function nnspec(args: string[], env: Record<string, string> = {}, timeoutMs = 90_000): Promise<Run> {
  const s = start(args, env);
  const timer = setTimeout(() => s.child.kill("SIGKILL"), timeoutMs);
  try {
    return await s.done;
  } finally {
    clearTimeout(timer);
  }
}

/** An expected error: exactly one `error:` line, naming what it must, and no stack trace. */
export function expectOneLineError(r: Run, re: RegExp): void {
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  expect(lines, r.stderr + r.stdout).toHaveLength(1);
  expect(lines[0]).toMatch(re);
  expect(r.stderr).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
}

/** File name → SHA-256 of every plain file in `dir` (recursively): "nothing written earlier was lost". */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    out[p.slice(dir.length + 1)] = createHash("sha256")
      .update(await readFile(p))
      .digest("hex");
  }
  return out;
}

/** The command printed after "resume with:", as arguments for `nnspec` (the printed `pnpm nnspec` dropped). */
export function resumeArgs(output: string): string[] {
  const line = /resume with:\n\s+(pnpm nnspec .+)/.exec(output)?.[1];
  if (!line) throw new Error(`no resume command in:\n${output}`);
  // The CLI quotes with '…' only where needed; these paths need none.
  return line.split(" ").slice(2);
}

/** Tiny MNIST settings: seconds per run on 2 cores. */
export const tiny = (out: string, extra: string[] = []): string[] => [
  "train",
  "--data-dir",
  mnistDir!,
  "--limit",
  "64",
  "--batch",
  "16",
  "--test-limit",
  "50",
  "--eval-batch",
  "50",
  "--log-every",
  "1",
  "--out",
  out,
  ...extra,
];

/** A backend module that wraps the reference backend (file URL, so it loads from any folder). */
export const referenceUrl = pathToFileURL(join(repoRoot, "backends/reference/src/index.ts")).href;
