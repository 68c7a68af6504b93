import { mkdir, open, rename, rm } from "node:fs/promises";
import { dirname, join, basename } from "node:path";
import { randomBytes } from "node:crypto";

/** A temporary name beside `path`: unpredictable, so nobody can plant a file or symlink there in advance. */
export function tmpNameFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
}

/**
 * Create `path` with `data`, exclusively ("wx": O_CREAT | O_EXCL, which also refuses an existing symlink, so
 * nothing is ever written through one), flushed to disk before returning. Fails if `path` exists.
 */
export async function writeNewFile(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, "wx", 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Write a file so that readers only ever see the old file or the complete new one: create a uniquely named
 * temporary file beside it (same folder, so the rename stays on one filesystem and is atomic), then rename it
 * over the target. `tmpPath` is for tests only (a known temporary name to attack).
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  o: { tmpPath?: string } = {},
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = o.tmpPath ?? tmpNameFor(path);
  try {
    await writeNewFile(tmp, data);
  } catch (err) {
    // Never remove what we did not create (EEXIST: someone else's file or symlink sits at that name).
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") await rm(tmp, { force: true });
    throw new Error(`cannot write ${path}: temporary file ${tmp}: ${(err as Error).message}`);
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
