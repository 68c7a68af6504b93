import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { UsageError, errorMessage } from "./errors.ts";

/**
 * Write a file atomically: a temporary file beside it with a unique name, created exclusively ("wx": O_CREAT |
 * O_EXCL, so an existing file or symlink of that name is never written through), then renamed over the target
 * (rename replaces a symlink at the target itself, never its target). A reader sees the old file or the new one.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}-${randomBytes(6).toString("hex")}.tmp`);
  let created = false;
  try {
    const fd = openSync(tmp, "wx", 0o644);
    created = true;
    try {
      const bytes = typeof data === "string" ? Buffer.from(data) : data;
      for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    if (created) rmSync(tmp, { force: true });
    throw err;
  }
}

/** JSON on disk, atomically; non-finite numbers as the strings "Infinity", "-Infinity", "NaN" (not JSON's null). */
export function writeJsonAtomic(path: string, data: unknown): void {
  const text = JSON.stringify(
    data,
    (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v),
    2,
  );
  writeFileAtomic(path, `${text}\n`);
}

/**
 * Refuse a report path that cannot be a file before any work is done: a folder, or a path under a file. The
 * folder it goes in is created now, so an unwritable place fails here too (the first write follows at once).
 */
export function checkReportPath(path: string, option = "--report"): void {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    // Not there yet: fine.
  }
  if (isDir)
    throw new UsageError(
      `${option} ${path} is a folder: give the report's file name, e.g. ${join(path, "report.json")}`,
    );
  try {
    const parent = dirname(path);
    const st = lstatSync(parent, { throwIfNoEntry: false });
    if (st && !statSync(parent).isDirectory()) throw new UsageError(`${option} ${path}: ${parent} is not a folder`);
    mkdirSync(parent, { recursive: true });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${option} ${path}: cannot create its folder: ${errorMessage(err)}`);
  }
}

/** The report of a run in progress, on disk at every moment: rewritten as results come in (at most once a second). */
export class ReportWriter {
  private last = 0;
  constructor(
    readonly path: string,
    private readonly minIntervalMs = 1000,
  ) {}

  /** Write now; a failure is a usage error naming the option (the path was the user's). */
  write(report: unknown): void {
    try {
      writeJsonAtomic(this.path, report);
    } catch (err) {
      throw new UsageError(`--report ${this.path}: cannot write it: ${errorMessage(err)}`);
    }
    this.last = Date.now();
  }

  /** Write unless the last write was less than the interval ago. */
  writeSoon(report: () => unknown): void {
    if (Date.now() - this.last >= this.minIntervalMs) this.write(report());
  }
}
