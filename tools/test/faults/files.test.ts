import { execFileSync } from "node:child_process";
import { copyFileSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, truncate, writeFile, cp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT } from "@nnspec/conformance";
import { loadMnist } from "../../src/data/index.ts";
import { loadCheckpoint, trainCnn } from "../../src/train/index.ts";
import { tmpNameFor, writeFileAtomic } from "../../src/plot/atomic-write.ts";
import { loadWorkspaceBackend } from "../../src/workspace-backends.ts";
import { expectOneLineError, mnistDir, nnspec, repoRoot, snapshot, tiny } from "./helpers.ts";

/** Items 7, 9, 10, 11 of issue 13: broken golden and checkpoint files, atomic checkpoints, temporary files, --force. */
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nnspec-faults-files-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const manifestOf = (path: string) =>
  JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown> & { binFile: string; binBytes: number };

describe("a golden's binFile (nnspec conformance --fixture): a plain, regular file of the stated size, checked before reading", () => {
  const CASE = "batch2-seed7";
  let g: string;
  let committed: Record<string, string>;
  const conformance = (fixture: string) =>
    nnspec(["conformance", "--backend", "reference", "--only-fixtures", "--fixture", fixture], {}, 60_000);
  /** A copy of the golden whose manifest is changed by `edit` and whose .bin is made by `bin`. */
  const variant = async (
    name: string,
    edit: (m: Record<string, unknown>) => void,
    bin?: (path: string) => Promise<void>,
  ) => {
    const m = manifestOf(join(repoRoot, "fixtures/cnn", `${CASE}.json`));
    m.binFile = `${name}.bin`;
    edit(m);
    await writeFile(join(g, `${name}.json`), JSON.stringify(m));
    if (bin) await bin(join(g, `${name}.bin`));
    return join(g, `${name}.json`);
  };
  beforeAll(async () => {
    g = join(dir, "goldens");
    await mkdir(g);
    committed = await snapshot(join(repoRoot, "fixtures/cnn"));
  });
  afterAll(async () => {
    // Nothing of the committed goldens was touched by any of this.
    expect(await snapshot(join(repoRoot, "fixtures/cnn"))).toEqual(committed);
  });

  it("'..' and absolute paths are refused by name, before any read", async () => {
    for (const bad of ["../../../etc/passwd", "/etc/passwd"]) {
      const r = await conformance(
        await variant("escape", (m) => {
          m.binFile = bad;
        }),
      );
      expect(r.code, r.stderr).toBe(EXIT.usage);
      expectOneLineError(r, /escape\.json: field "binFile": must be a plain file name in the manifest's folder/);
    }
  });
  it("a truncated .bin: its size against binBytes, before reading", async () => {
    const path = await variant(
      "truncated",
      () => {},
      async (p) => {
        copyFileSync(join(repoRoot, "fixtures/cnn", `${CASE}.bin`), p);
        await truncate(p, 1000);
      },
    );
    const r = await conformance(path);
    expect(r.code).toBe(EXIT.usage);
    expectOneLineError(
      r,
      new RegExp(
        `truncated\\.json: field "binBytes": manifest says ${manifestOf(path).binBytes} bytes, .*truncated\\.bin has 1000 \\(truncated`,
      ),
    );
  });
  it("a device (/dev/zero behind the name) is refused at once, not read forever", async () => {
    const t0 = performance.now();
    const r = await conformance(
      await variant(
        "device",
        () => {},
        (p) => symlink("/dev/zero", p),
      ),
    );
    expect(r.code).toBe(EXIT.usage);
    expectOneLineError(r, /device\.bin: not a regular file \(a device\)/);
    expect(performance.now() - t0).toBeLessThan(30_000);
  });
  it("a FIFO is refused, not waited on", async () => {
    const r = await conformance(
      await variant(
        "fifo",
        () => {},
        async (p) => {
          execFileSync("mkfifo", [p]);
        },
      ),
    );
    expect(r.code).toBe(EXIT.usage);
    expectOneLineError(r, /fifo\.bin: not a regular file \(a FIFO\)/);
  });
});

describe.runIf(mnistDir)("checkpoints: one unit (manifest + hashed .bin), broken files refused by --resume", () => {
  let e1: string; // the epoch-1 pair, as saved
  let e2: string; // the epoch-2 pair of the same run
  const resume = (ck: string) =>
    nnspec(["train", "--resume", ck, "--data-dir", mnistDir!, "--out", join(dir, "never")]);
  /** A copy of `from` (manifest + its .bin) in a fresh folder `name`. */
  const copyPair = async (from: string, name: string) => {
    const to = join(dir, name);
    await cp(from, to, { recursive: true });
    return join(to, "ck.json");
  };
  beforeAll(async () => {
    const data = await loadMnist({ dataDir: mnistDir! });
    const backend = await loadWorkspaceBackend("reference", { precision: "float32" });
    const run = join(dir, "run");
    e1 = join(dir, "epoch1");
    try {
      await trainCnn(
        {
          backend,
          data,
          epochs: 2,
          batchSize: 16,
          maxLr: 0.05,
          seed: 1,
          limit: 32,
          testLimit: 20,
          checkpointPath: join(run, "ck.json"),
        },
        {
          // A copy of the pair as it stood after epoch 1 (the hook runs right after the save).
          onCheckpoint: (p) => {
            if (!readFileSync(p, "utf8").includes('"epochsCompleted": 2')) execFileSync("cp", ["-r", run, e1]);
          },
        },
      );
    } finally {
      await backend.dispose?.();
    }
    e2 = run;
    expect((await loadCheckpoint(join(e1, "ck.json"))).training.epochsCompleted).toBe(1);
    expect((await loadCheckpoint(join(e2, "ck.json"))).training.epochsCompleted).toBe(2);
    // A save leaves exactly one manifest and the .bin it names.
    expect((await readdir(e2)).sort()).toEqual(["ck.json", manifestOf(join(e2, "ck.json")).binFile].sort());
  }, 120_000);

  it("a pair from two different epochs is refused (the .bin's SHA-256 is in the manifest)", async () => {
    const before = { e1: await snapshot(e1), e2: await snapshot(e2) };
    // The epoch-1 manifest beside the epoch-2 .bin under the name it expects, and the other way round.
    for (const [m, b, name] of [
      [e1, e2, "mix-a"],
      [e2, e1, "mix-b"],
    ] as const) {
      const ck = await copyPair(m, name);
      await rm(join(dir, name, manifestOf(ck).binFile));
      copyFileSync(join(b, manifestOf(join(b, "ck.json")).binFile), join(dir, name, manifestOf(ck).binFile));
      const r = await resume(ck);
      if (m === e1) {
        // Both .bins hold the same tensors, so the sizes match and only the hash tells the saves apart.
        expectOneLineError(
          r,
          /\.bin: SHA-256 [0-9a-f]{12}… does not match ck\.json's [0-9a-f]{12}… \(the pair comes from two different saves\)/,
        );
      } else {
        expectOneLineError(r, /\.bin: SHA-256 .* does not match/);
      }
      expect(r.code).toBe(EXIT.usage);
    }
    expect({ e1: await snapshot(e1), e2: await snapshot(e2) }).toEqual(before);
  });
  it("a truncated .bin", async () => {
    const ck = await copyPair(e1, "trunc");
    const binPath = join(dir, "trunc", manifestOf(ck).binFile);
    await truncate(binPath, 4096);
    const r = await resume(ck);
    expect(r.code).toBe(EXIT.usage);
    expectOneLineError(
      r,
      new RegExp(
        `${basename(binPath).replace(/\./g, "\\.")}: 4096 bytes, the manifest says ${manifestOf(ck).binBytes}`,
      ),
    );
  });
  it("a device or a FIFO in place of the .bin", async () => {
    for (const [name, make, kind] of [
      ["dev", (p: string) => symlink("/dev/zero", p), "a device"],
      [
        "fifo",
        async (p: string) => {
          execFileSync("mkfifo", [p]);
        },
        "a FIFO",
      ],
    ] as const) {
      const ck = await copyPair(e1, `ck-${name}`);
      const binPath = join(dir, `ck-${name}`, manifestOf(ck).binFile);
      await rm(binPath);
      await make(binPath);
      const r = await resume(ck);
      expect(r.code).toBe(EXIT.usage);
      expectOneLineError(r, new RegExp(`not a regular file \\(${kind}\\)`));
    }
  });
  it("a binFile outside the manifest's folder", async () => {
    const ck = await copyPair(e1, "escape");
    const m = manifestOf(ck);
    await writeFile(ck, JSON.stringify({ ...m, binFile: `../epoch1/${m.binFile}` }));
    const r = await resume(ck);
    expect(r.code).toBe(EXIT.usage);
    expectOneLineError(r, /ck\.json: field "binFile": must be a plain file name/);
  });
});

describe("temporary files: unique names, created exclusively, never through a symlink", () => {
  it("a symlink planted at the temporary name is refused; its target and the destination are untouched", async () => {
    const victim = join(dir, "victim.txt");
    const dest = join(dir, "report.json");
    await writeFile(victim, "precious\n");
    await writeFile(dest, "old report\n");
    const tmp = join(dir, "report.json.tmp");
    await symlink(victim, tmp);
    await expect(writeFileAtomic(dest, "new report\n", { tmpPath: tmp })).rejects.toThrow(
      /cannot write .*report\.json: temporary file .*report\.json\.tmp: EEXIST/,
    );
    expect(await readFile(victim, "utf8")).toBe("precious\n");
    expect(await readFile(dest, "utf8")).toBe("old report\n");
    // The real names are unpredictable: nothing can be planted in advance.
    expect(tmpNameFor(dest)).not.toBe(tmpNameFor(dest));
    await writeFileAtomic(dest, "new report\n");
    expect(await readFile(dest, "utf8")).toBe("new report\n");
    expect((await readdir(dir)).filter((f) => f.startsWith(".report.json"))).toEqual([]);
  });
});

describe("finished output is not overwritten without --force", () => {
  it.runIf(mnistDir)(
    "train --out holding a finished run",
    async () => {
      const out = join(dir, "finished");
      const first = await nnspec(tiny(out, ["--epochs", "1", "--limit", "32"]));
      expect(first.code, first.stderr).toBe(EXIT.ok);
      const before = await snapshot(out);
      const again = await nnspec(tiny(out, ["--epochs", "1", "--limit", "32", "--seed", "2"]));
      expect(again.code).toBe(EXIT.usage);
      expectOneLineError(again, /--out .*finished holds a finished run \(run\.json, 1 epoch\(s\)\).*pass --force/);
      expect(await snapshot(out)).toEqual(before);
      const forced = await nnspec(tiny(out, ["--epochs", "1", "--limit", "32", "--seed", "2", "--force"]));
      expect(forced.code, forced.stderr).toBe(EXIT.ok);
      const record = JSON.parse(await readFile(join(out, "run.json"), "utf8")) as { seed: number; status: string };
      expect(record).toMatchObject({ seed: 2, status: "complete" });
      // One manifest, one .bin: the earlier run's checkpoint went with it.
      expect((await readdir(out)).filter((f) => f.endsWith(".bin"))).toHaveLength(1);
    },
    60_000,
  );

  it("sweep --out holding an earlier sweep; with --force no stale chart stays", async () => {
    const out = join(dir, "sweep");
    const first = await nnspec(["sweep", "--lr", "0.5,1", "--steps", "5", "--out", out]);
    expect(first.code, first.stderr).toBe(EXIT.ok);
    const before = await snapshot(out);
    const again = await nnspec(["sweep", "--lr", "0.2", "--steps", "5", "--out", out]);
    expect(again.code).toBe(EXIT.usage);
    expectOneLineError(again, /option --out .*sweep: holds an earlier sweep \(sweep\.json\); pass --force/);
    expect(await snapshot(out)).toEqual(before);
    const forced = await nnspec(["sweep", "--lr", "0.2", "--steps", "5", "--out", out, "--force"]);
    expect(forced.code, forced.stderr).toBe(EXIT.ok);
    expect((await readdir(out)).sort()).toEqual([
      "error-all-lr.png",
      "error-all-lr.svg",
      "error-lr-0.2.png",
      "error-lr-0.2.svg",
      "sweep.json",
    ]);
  }, 60_000);
});
