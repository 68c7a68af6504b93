import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { NORMALIZE } from "@nnspec/spec";
import { DEFAULT_MNIST_MIRRORS, MNIST_FILE_KEYS, MNIST_FILES, type MnistFileKey } from "./files.ts";
import { DownloadError, downloadVerified, sha256 } from "./download.ts";
import { MnistFileError, parseMnistPair, gunzipFile, type MnistSplit } from "./idx.ts";

export interface MnistLocation {
  /** Explicit folder (--data-dir): files must be there; never downloaded into. */
  readonly dataDir?: string;
  /** Environment to read MNIST_DIR / MNIST_MIRRORS / NNSPEC_CACHE_DIR from (default process.env). */
  readonly env?: Record<string, string | undefined>;
  /** Cache folder used when neither is given (default ~/.cache/nnspec/mnist). */
  readonly cacheDir?: string;
  readonly mirrors?: readonly string[];
  readonly log?: (line: string) => void;
}

export interface MnistData {
  readonly dir: string;
  readonly train: MnistSplit;
  readonly test: MnistSplit;
}

export function defaultCacheDir(env: Record<string, string | undefined>): string {
  if (env.NNSPEC_CACHE_DIR) return join(env.NNSPEC_CACHE_DIR, "mnist");
  const base = env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "nnspec", "mnist");
}

const HOW_TO_PROVIDE =
  "Provide the four official MNIST .gz files in a folder and pass --data-dir <folder> or set MNIST_DIR=<folder>.";

async function readVerified(dir: string, key: MnistFileKey): Promise<Uint8Array> {
  const { name, sha256: expected } = MNIST_FILES[key];
  const path = join(dir, name);
  const buf = await readFile(path);
  const sum = sha256(buf);
  if (sum !== expected)
    throw new MnistFileError(
      path,
      `checksum mismatch: sha256 ${sum}, expected ${expected} (not the official file, or corrupt)`,
    );
  return buf;
}

/**
 * Find the MNIST folder: --data-dir, else $MNIST_DIR, else the cache folder, downloading missing files into the
 * cache (checksum-verified). A user-given folder is never written to: missing files there are an error.
 */
export async function locateMnist(loc: MnistLocation = {}): Promise<string> {
  const env = loc.env ?? process.env;
  const given = loc.dataDir ?? env.MNIST_DIR;
  if (given) {
    const dir = resolve(given);
    const source = loc.dataDir ? "--data-dir" : "MNIST_DIR";
    const missing = MNIST_FILE_KEYS.map((k) => MNIST_FILES[k].name).filter((n) => !existsSync(join(dir, n)));
    if (missing.length > 0)
      throw new MnistFileError(dir, `${source} folder lacks ${missing.join(", ")}. ${HOW_TO_PROVIDE}`);
    return dir;
  }
  const dir = loc.cacheDir ?? defaultCacheDir(env);
  const mirrors =
    loc.mirrors ??
    (env.MNIST_MIRRORS
      ? env.MNIST_MIRRORS.split(",")
          .map((s) => s.trim())
          .filter(Boolean)
      : DEFAULT_MNIST_MIRRORS);
  for (const key of MNIST_FILE_KEYS) {
    const { name, sha256: expected } = MNIST_FILES[key];
    const dest = join(dir, name);
    if (existsSync(dest)) continue;
    try {
      await downloadVerified({ mirrors, fileName: name, sha256: expected, dest, ...(loc.log ? { log: loc.log } : {}) });
    } catch (err) {
      if (err instanceof DownloadError)
        throw new DownloadError(
          `${err.message}\nMNIST file ${name} is not in ${dir} and could not be downloaded. ${HOW_TO_PROVIDE}`,
        );
      throw err;
    }
  }
  return dir;
}

/** Locate, checksum-verify, decompress and validate both splits. */
export async function loadMnist(loc: MnistLocation = {}): Promise<MnistData> {
  const dir = await locateMnist(loc);
  const raw = Object.fromEntries(
    await Promise.all(MNIST_FILE_KEYS.map(async (k) => [k, await readVerified(dir, k)] as const)),
  ) as Record<MnistFileKey, Uint8Array>;
  const pair = (i: MnistFileKey, l: MnistFileKey) => {
    const ip = join(dir, MNIST_FILES[i].name);
    const lp = join(dir, MNIST_FILES[l].name);
    return parseMnistPair(gunzipFile(raw[i], ip), gunzipFile(raw[l], lp), ip, lp);
  };
  return { dir, train: pair("trainImages", "trainLabels"), test: pair("testImages", "testLabels") };
}

const PIXELS = 28 * 28;
/** The formula evaluated once per byte value in float64, in the order written, so no rewrite changes rounding. */
const NORMALIZED_PIXEL = Float64Array.from({ length: 256 }, (_, v) => (v / 255 - NORMALIZE.mean) / NORMALIZE.std);

/**
 * Gather images `indices` into `out` as [n, 1, 28, 28] normalised with the spec constants:
 * (x/255 − mean)/std. Returns `out` (allocated when absent or too small).
 */
export function normalizedBatch(split: MnistSplit, indices: ArrayLike<number>, out?: Float32Array): Float32Array {
  const n = indices.length;
  const dst = out && out.length >= n * PIXELS ? out.subarray(0, n * PIXELS) : new Float32Array(n * PIXELS);
  for (let b = 0; b < n; b++) {
    const src = indices[b]! * PIXELS;
    const o = b * PIXELS;
    for (let p = 0; p < PIXELS; p++) dst[o + p] = NORMALIZED_PIXEL[split.images[src + p]!]!;
  }
  return dst;
}

export function batchLabels(split: MnistSplit, indices: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) out[i] = split.labels[indices[i]!]!;
  return out;
}
