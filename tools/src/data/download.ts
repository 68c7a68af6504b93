import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm } from "node:fs/promises";
import { dirname, join, basename } from "node:path";
import { writeNewFile } from "../plot/atomic-write.ts";

export function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export class DownloadError extends Error {
  override name = "DownloadError";
}

export interface DownloadOptions {
  /** Base URLs tried in order; the file name is appended. */
  readonly mirrors: readonly string[];
  readonly fileName: string;
  readonly sha256: string;
  readonly dest: string;
  readonly timeoutMs?: number;
  readonly log?: (line: string) => void;
}

const joinUrl = (base: string, file: string) => (base.endsWith("/") ? base + file : `${base}/${file}`);

/**
 * Fetch `fileName` from the first mirror that serves it with the right SHA-256, writing to a temp name in the
 * destination folder and renaming only after the sum matches, so a failed or partial download leaves nothing.
 */
export async function downloadVerified(o: DownloadOptions): Promise<void> {
  await mkdir(dirname(o.dest), { recursive: true });
  const problems: string[] = [];
  for (const mirror of o.mirrors) {
    const url = joinUrl(mirror, o.fileName);
    const tmp = join(dirname(o.dest), `.${basename(o.dest)}.${randomBytes(6).toString("hex")}.part`);
    try {
      o.log?.(`downloading ${url}`);
      const res = await fetch(url, { signal: AbortSignal.timeout(o.timeoutMs ?? 120_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
      const body = new Uint8Array(await res.arrayBuffer());
      const sum = sha256(body);
      if (sum !== o.sha256) throw new Error(`checksum mismatch: got sha256 ${sum}, expected ${o.sha256}`);
      await writeNewFile(tmp, body); // exclusive: never through a file or symlink already there
      // Re-read what landed on disk: the rename must only ever publish verified bytes.
      if (sha256(await readFile(tmp)) !== o.sha256)
        throw new Error("file on disk does not match the checksum after writing");
      await rename(tmp, o.dest);
      return;
    } catch (err) {
      await rm(tmp, { force: true });
      const e = err as Error & { cause?: { message?: string } };
      problems.push(`${url}: ${e.message}${e.cause?.message ? ` (${e.cause.message})` : ""}`);
    }
  }
  throw new DownloadError(`could not fetch ${o.fileName}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
}
