import { createServer, type Server } from "node:http";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NORMALIZE } from "@nnspec/spec";
import {
  DownloadError,
  IDX_MAGIC,
  MNIST_FILES,
  MnistFileError,
  downloadVerified,
  loadMnist,
  locateMnist,
  normalizedBatch,
  parseIdx,
  parseMnistPair,
  readMnistPair,
  sha256,
} from "../src/data/index.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const realDir = [process.env.MNIST_DIR, resolve(repoRoot, "../shared/data/mnist")].find(
  (d) => d && existsSync(join(d, MNIST_FILES.trainImages.name)),
);

/** An IDX buffer: magic, sizes, then `data` (or `count × …` zero bytes). */
function idx(magic: number, dims: number[], data?: Uint8Array): Uint8Array {
  const head = new DataView(new ArrayBuffer(4 + 4 * dims.length));
  head.setUint32(0, magic, false);
  for (const [i, d] of dims.entries()) head.setUint32(4 + 4 * i, d, false);
  const body = data ?? new Uint8Array(dims.reduce((a, b) => a * b, 1));
  const out = new Uint8Array(head.byteLength + body.length);
  out.set(new Uint8Array(head.buffer), 0);
  out.set(body, head.byteLength);
  return out;
}

describe("MNIST on the real files", () => {
  if (!realDir) {
    console.warn("skipping real-MNIST tests: no MNIST files in $MNIST_DIR or ../shared/data/mnist");
    it.skip("real MNIST files not present", () => {});
    return;
  }
  it("has the official checksums, 60000/10000 images of 28×28 with labels 0..9", async () => {
    for (const f of Object.values(MNIST_FILES)) expect(sha256(await readFile(join(realDir, f.name)))).toBe(f.sha256);
    const d = await loadMnist({ dataDir: realDir });
    expect(d.train.count).toBe(60000);
    expect(d.test.count).toBe(10000);
    expect(d.train.images.length).toBe(60000 * 784);
    expect(d.test.labels.length).toBe(10000);
    // Every class occurs, in the known rough proportions (each between 8 % and 12 %).
    const counts = new Array(10).fill(0);
    for (const l of d.train.labels) counts[l]++;
    for (const c of counts) expect(c / 60000).toBeGreaterThan(0.08);
    for (const c of counts) expect(c / 60000).toBeLessThan(0.12);
  });
  it("normalises with the spec constants", async () => {
    const d = await loadMnist({ dataDir: realDir });
    const x = normalizedBatch(d.train, [0, 7]);
    expect(x.length).toBe(2 * 784);
    for (const p of [0, 300, 784 + 400]) {
      const raw = d.train.images[(p < 784 ? 0 : 7 * 784 - 784) + p]!;
      expect(x[p]).toBeCloseTo((raw / 255 - NORMALIZE.mean) / NORMALIZE.std, 6);
    }
    // Dataset-wide statistics of the normalised training images are ≈ 0 mean and 1 std (that is what the constants are).
    let s = 0,
      s2 = 0;
    const all = normalizedBatch(
      d.train,
      Uint32Array.from({ length: 60000 }, (_, i) => i),
    );
    for (const v of all) {
      s += v;
      s2 += v * v;
    }
    const mean = s / all.length;
    expect(Math.abs(mean)).toBeLessThan(1e-3);
    expect(Math.sqrt(s2 / all.length - mean * mean)).toBeCloseTo(1, 2);
  });
  it("MNIST_DIR is honoured and checked against the official checksums", async () => {
    const d = await loadMnist({ env: { MNIST_DIR: realDir } });
    expect(d.dir).toBe(resolve(realDir));
    expect(d.test.count).toBe(10000);
  });
});

describe("IDX validation", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "nnspec-idx-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("parses a well-formed pair", () => {
    const pixels = Uint8Array.from({ length: 2 * 784 }, (_, i) => i % 256);
    const s = parseMnistPair(
      idx(IDX_MAGIC.images, [2, 28, 28], pixels),
      idx(IDX_MAGIC.labels, [2], Uint8Array.of(3, 9)),
      "img",
      "lab",
    );
    expect(s.count).toBe(2);
    expect([...s.labels]).toEqual([3, 9]);
    expect(s.images[785]).toBe(785 % 256);
  });
  it("rejects a bad magic number, naming the file and both numbers", () => {
    expect(() => parseIdx(idx(0x00000801, [2, 28, 28]), IDX_MAGIC.images, "x-images.idx")).toThrow(
      /x-images\.idx: bad magic number 0x00000801 \(expected 0x00000803/,
    );
  });
  it("rejects truncated data and truncated headers", () => {
    const full = idx(IDX_MAGIC.images, [3, 28, 28]);
    expect(() => parseIdx(full.subarray(0, full.length - 10), IDX_MAGIC.images, "f")).toThrow(
      /f: truncated: header says 3×28×28 = 2352 bytes of data, file has 2342/,
    );
    expect(() => parseIdx(full.subarray(0, 9), IDX_MAGIC.images, "f")).toThrow(/truncated: 9 bytes, header needs 16/);
    expect(() => parseIdx(full.subarray(0, 2), IDX_MAGIC.images, "f")).toThrow(/truncated: 2 bytes/);
  });
  it("rejects wrong image size and a count mismatch between images and labels", () => {
    expect(() => parseMnistPair(idx(IDX_MAGIC.images, [1, 28, 27]), idx(IDX_MAGIC.labels, [1]), "i", "l")).toThrow(
      /i: images are 28×27, expected 28×28/,
    );
    expect(() =>
      parseMnistPair(idx(IDX_MAGIC.images, [3, 28, 28]), idx(IDX_MAGIC.labels, [2]), "dir/i.gz", "dir/l.gz"),
    ).toThrow(/dir\/l\.gz: count mismatch: 2 labels but i\.gz has 3 images/);
    expect(() =>
      parseMnistPair(idx(IDX_MAGIC.images, [1, 28, 28]), idx(IDX_MAGIC.labels, [1], Uint8Array.of(12)), "i", "l"),
    ).toThrow(/l: label 0 is 12/);
  });
  it("reads .gz files from disk and reports a truncated .gz by file name", async () => {
    const img = join(dir, "a-images.gz");
    const lab = join(dir, "a-labels.gz");
    await writeFile(img, gzipSync(idx(IDX_MAGIC.images, [4, 28, 28])));
    await writeFile(lab, gzipSync(idx(IDX_MAGIC.labels, [4])));
    expect((await readMnistPair(img, lab)).count).toBe(4);
    const gz = gzipSync(idx(IDX_MAGIC.images, [4, 28, 28]));
    await writeFile(img, gz.subarray(0, gz.length - 20));
    await expect(readMnistPair(img, lab)).rejects.toThrow(
      new RegExp(`${img.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: cannot decompress.*truncated or corrupt`),
    );
  });
  it("a --data-dir with a wrong file fails its checksum, naming the file", async () => {
    const d = join(dir, "fake");
    await rm(d, { recursive: true, force: true });
    const { mkdir } = await import("node:fs/promises");
    await mkdir(d);
    for (const f of Object.values(MNIST_FILES)) await writeFile(join(d, f.name), gzipSync(idx(IDX_MAGIC.labels, [1])));
    const err = await loadMnist({ dataDir: d }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MnistFileError);
    expect((err as Error).message).toMatch(
      /-idx\d-ubyte\.gz: checksum mismatch: sha256 [0-9a-f]{64}, expected [0-9a-f]{64}/,
    );
    await rm(join(d, MNIST_FILES.testLabels.name));
    await expect(loadMnist({ dataDir: d })).rejects.toThrow(
      /--data-dir folder lacks t10k-labels-idx1-ubyte\.gz.*MNIST_DIR/,
    );
  });
});

describe("download", () => {
  let server: Server;
  let base: string;
  let dir: string;
  const good = new TextEncoder().encode("pretend this is an MNIST file\n");
  const hits: string[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "nnspec-dl-"));
    server = createServer((req, res) => {
      hits.push(req.url ?? "");
      if (req.url === "/good/f.gz") {
        res.writeHead(200);
        res.end(good);
      } else if (req.url === "/bad/f.gz") {
        res.writeHead(200);
        res.end(new TextEncoder().encode("tampered bytes"));
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    const addr = server.address();
    if (!addr || typeof addr === "string") throw new Error("no server address");
    base = `http://127.0.0.1:${addr.port}`;
  });
  afterAll(async () => {
    await new Promise((ok) => server.close(ok));
    await rm(dir, { recursive: true, force: true });
  });

  it("a matching checksum publishes the file", async () => {
    const dest = join(dir, "ok", "f.gz");
    await downloadVerified({ mirrors: [`${base}/good/`], fileName: "f.gz", sha256: sha256(good), dest });
    expect(new Uint8Array(await readFile(dest))).toEqual(good);
    expect(await readdir(join(dir, "ok"))).toEqual(["f.gz"]);
  });
  it("a wrong checksum is an error and leaves no file, not even a temp file", async () => {
    const dest = join(dir, "bad", "f.gz");
    const err = await downloadVerified({
      mirrors: [`${base}/bad/`],
      fileName: "f.gz",
      sha256: sha256(good),
      dest,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as Error).message).toMatch(/could not fetch f\.gz:\n.*\/bad\/f\.gz: checksum mismatch/);
    expect(await readdir(join(dir, "bad"))).toEqual([]);
  });
  it("falls through mirrors: a 404 then a good mirror", async () => {
    const dest = join(dir, "fall", "f.gz");
    await downloadVerified({
      mirrors: [`${base}/missing`, `${base}/good`],
      fileName: "f.gz",
      sha256: sha256(good),
      dest,
    });
    expect(existsSync(dest)).toBe(true);
  });
  it("offline: the cache download names the file that could not be fetched and how to provide it", async () => {
    const cacheDir = join(dir, "cache");
    const err = await locateMnist({ env: {}, cacheDir, mirrors: [`${base}/nothing-here/`] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/could not fetch train-images-idx3-ubyte\.gz/);
    expect(msg).toMatch(/HTTP 404/);
    expect(msg).toMatch(/--data-dir/);
    expect(msg).toMatch(/MNIST_DIR/);
    expect(await readdir(cacheDir)).toEqual([]);
  });
  it("serves the cache from the real files through a local mirror when present", async () => {
    if (!realDir) {
      console.warn("skipping: real MNIST files absent");
      return;
    }
    const real = createServer(async (req, res) => {
      try {
        res.writeHead(200);
        res.end(await readFile(join(realDir, (req.url ?? "").replace(/^\/mnist\//, ""))));
      } catch {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((ok) => real.listen(0, "127.0.0.1", ok));
    try {
      const port = (real.address() as { port: number }).port;
      const cacheDir = join(dir, "real-cache");
      const d = await loadMnist({ env: { MNIST_MIRRORS: `http://127.0.0.1:${port}/mnist/` }, cacheDir });
      expect(d.dir).toBe(cacheDir);
      expect(d.train.count).toBe(60000);
      expect((await readdir(cacheDir)).sort()).toEqual(
        Object.values(MNIST_FILES)
          .map((f) => f.name)
          .sort(),
      );
    } finally {
      await new Promise((ok) => real.close(ok));
    }
  });
});
