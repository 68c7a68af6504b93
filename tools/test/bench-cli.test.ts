import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchResultsSchema, type BenchResults } from "@nnspec/spec";
import { MNIST_FILES } from "../src/data/index.ts";
import { pngSize } from "../src/plot/index.ts";
import { probeTorch } from "../src/bench/run-bench.ts";
import { mainTable } from "../src/bench/format.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const realMnist = [process.env.MNIST_DIR, resolve(repoRoot, "../shared/data/mnist")].find(
  (d) => d && existsSync(join(d, MNIST_FILES.trainImages.name)),
);
const bin = join(repoRoot, "tools/bin/nnspec.js");
const torch = probeTorch();

function nnspec(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: repoRoot, env: { ...process.env, NO_COLOR: "1", ...env }, timeout: 400_000, maxBuffer: 1 << 24 },
      (err, stdout, stderr) => {
        ok({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nnspec-bench-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const readResults = (out: string): BenchResults =>
  benchResultsSchema.parse(JSON.parse(readFileSync(join(out, "results.json"), "utf8")));

describe("nnspec bench --quick with the reference backend (and the PyTorch peer when torch imports)", () => {
  let out: string;
  let run: { code: number; stdout: string; stderr: string };
  let results: BenchResults;
  beforeAll(async () => {
    out = join(dir, "reference");
    // Without the real MNIST files, point MNIST_DIR at an empty folder: the training phase is skipped, never downloaded.
    const env = realMnist ? { MNIST_DIR: realMnist } : { MNIST_DIR: dir };
    run = await nnspec(
      [
        "bench",
        "--quick",
        "--backends",
        "reference-float32",
        "--out",
        out,
        "--timeout-s",
        "150",
        ...(torch.available ? [] : ["--no-peer"]),
      ],
      env,
    );
    results = readResults(out);
  }, 420_000);

  it("exits 0 and writes results.json that validates against the spec schema", () => {
    expect(run.code, run.stderr + run.stdout).toBe(0);
    expect(results.settings.mode).toBe("quick");
    const ref = results.entries.find((e) => e.id === "reference-float32")!;
    expect(ref.status).toBe("ok");
    expect(ref.manifest?.name).toBe("reference");
    // Accuracy from the real suite: every check of the quick golden subset passes, within tolerance.
    expect(ref.conformance!.checks).toBeGreaterThan(50);
    expect(ref.conformance!.passed).toBe(ref.conformance!.checks);
    expect(ref.conformance!.worstRatio!).toBeLessThanOrEqual(1);
    expect(ref.conformance!.groups.map((g) => g.group).sort()).toEqual([
      "cnn.backward",
      "cnn.dropout",
      "cnn.forward",
      "cnn.step",
      "net222",
    ]);
    for (const s of Object.values(ref.speed)) {
      expect(s).not.toBeNull();
      expect(s!.min).toBeLessThanOrEqual(s!.median);
      expect(s!.median).toBeLessThanOrEqual(s!.max);
      expect(s!.median).toBeGreaterThan(0);
    }
    expect(ref.startup!.firstResultMs).toBeGreaterThan(ref.startup!.processMs);
    expect(ref.peakRssBytes!).toBeGreaterThan(20 * 2 ** 20);
    if (realMnist) {
      expect(ref.training!.trainImages).toBe(256);
      expect(ref.training!.batchLoss).toHaveLength(2);
    } else {
      expect(ref.phases.find((p) => p.name === "mnist-train")!.status).toBe("skipped");
    }
  });

  it("runs the PyTorch peer on the same budget when torch imports, and says so when it does not", () => {
    const peer = results.entries.find((e) => e.kind === "peer");
    if (!torch.available) {
      console.log(`PyTorch not importable (${torch.reason}): peer checked as absent only`);
      expect(peer).toBeUndefined();
      return;
    }
    expect(results.peer).toMatchObject({ available: true, version: torch.version });
    expect(peer!.status, peer!.failure?.message).toBe("ok");
    expect(peer!.speed.trainImagesPerSecond!.median).toBeGreaterThan(0);
    if (realMnist) expect(peer!.training!.trainImages).toBe(256);
    // Every backend speed is shown relative to the peer: the ratio printed is own median / peer median.
    const ref = results.entries.find((e) => e.id === "reference-float32")!;
    const ratio = ref.speed.trainImagesPerSecond!.median / peer!.speed.trainImagesPerSecond!.median;
    const table = mainTable(results);
    const cell = table.rows[results.entries.indexOf(ref)]![table.header.indexOf("train img/s b128")]!;
    const shown = Number(/×([\d.e+-]+)$/.exec(cell)?.[1]);
    expect(Math.abs(shown - ratio) / ratio).toBeLessThan(0.01); // printed to 3 significant digits
  });

  it("writes scoreboard.md with the machine and a row per backend, and report.html with inline SVG charts", async () => {
    const md = await readFile(join(out, "scoreboard.md"), "utf8");
    expect(md).toContain(results.machine.cpuModel);
    expect(md).toContain(`Node ${process.version}`);
    const ref = results.entries.find((e) => e.id === "reference-float32")!;
    expect(md).toMatch(
      new RegExp(
        `\\| reference-float32 \\| float32 \\| ok \\| ${ref.conformance!.passed}/${ref.conformance!.checks} \\|`,
      ),
    );
    const html = await readFile(join(out, "report.html"), "utf8");
    expect(html).not.toMatch(/<script|src="http/); // opens from disk, nothing external
    expect((html.match(/<svg/g) ?? []).length).toBeGreaterThanOrEqual(6);
    const png = await readFile(join(out, "charts", "speed-trainImagesPerSecond.png"));
    expect(pngSize(png).width).toBeGreaterThan(400);
  });

  it("report.html renders in Chromium: a screenshot is far from blank", async () => {
    const { chromium } = await import("playwright");
    const browser = await chromium.launch({
      executablePath: process.env.NNSPEC_CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      await page.goto(pathToFileURL(join(out, "report.html")).href);
      const shot = await page.screenshot({ fullPage: true });
      await writeFile(join(out, "screenshot.png"), shot);
      expect(pngSize(shot).height).toBeGreaterThan(900);
      // Decode the screenshot in the page itself and count non-white pixels and distinct colours.
      const stats = await page.evaluate(async (b64: string) => {
        const img = new Image();
        img.src = `data:image/png;base64,${b64}`;
        await img.decode();
        const c = document.createElement("canvas");
        c.width = img.width;
        c.height = img.height;
        const ctx = c.getContext("2d")!;
        ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let ink = 0;
        const colours = new Set<number>();
        for (let i = 0; i < d.length; i += 4) {
          if (d[i]! < 200 || d[i + 1]! < 200 || d[i + 2]! < 200) ink++;
          colours.add(((d[i]! >> 4) << 8) | ((d[i + 1]! >> 4) << 4) | (d[i + 2]! >> 4));
        }
        return { ink: ink / (d.length / 4), colours: colours.size };
      }, shot.toString("base64"));
      expect(stats.ink).toBeGreaterThan(0.02); // text, tables, bars
      expect(stats.colours).toBeGreaterThan(20); // chart colours, not one flat shade
      expect(await page.locator("figure svg").count()).toBeGreaterThanOrEqual(6);
    } finally {
      await browser.close();
    }
  });
});

describe("nnspec bench keeps going when a backend hangs or throws", () => {
  it("reports a hanging backend as timed out, a throwing one as failed, and still measures the next", async () => {
    const hang = join(dir, "hang-backend.mjs");
    const boom = join(dir, "boom-backend.mjs");
    const tiny = join(dir, "tiny-backend.mjs");
    // Busy loop: the worst case (the worker cannot even answer), only SIGKILL ends it.
    await writeFile(hang, "export async function createBackend() { for (;;) {} }\n");
    await writeFile(boom, "export async function createBackend() { throw new Error('boom: no device here'); }\n");
    // A working 2-2-2-only backend built from the spec's formulas, so the bench has something to measure after them.
    const spec = pathToFileURL(join(repoRoot, "spec/src/index.ts")).href;
    await writeFile(
      tiny,
      `import { forward, gradients, updateWeights, weightsOf } from ${JSON.stringify(spec)};
const step = (c, lr) => updateWeights(weightsOf(c), gradients(c), lr);
export async function createBackend() {
  return {
    manifest: { name: "tiny", version: "0.0.0", precision: "float64", environment: "node", device: "spec formulas", capabilities: ["net222.forward", "net222.gradients", "net222.step", "net222.train"] },
    net222: {
      forward: async (c) => forward(c), gradients: async (c) => gradients(c), step: async (c, lr) => step(c, lr),
      train: async (c, lr, n) => { const out = []; let cur = { ...c }; for (let i = 0; i <= n; i++) { out.push({ step: i, weights: weightsOf(cur), forward: forward(cur), gradients: gradients(cur) }); if (i < n) cur = { ...cur, ...step(cur, lr) }; } return out; },
    },
  };
}
`,
    );
    const out = join(dir, "faults");
    const t0 = performance.now();
    const r = await nnspec(
      ["bench", "--quick", "--no-peer", "--backends", [hang, boom, tiny].join(","), "--timeout-s", "4", "--out", out],
      { MNIST_DIR: dir },
    );
    expect(performance.now() - t0).toBeLessThan(120_000);
    expect(r.code, r.stderr).toBe(1); // a backend did not finish cleanly
    expect(r.stdout).toMatch(/hang-backend \(timed-out in load: no result within 4 s/);
    const results = readResults(out);
    const [h, b, t] = ["hang-backend", "boom-backend", "tiny-backend"].map(
      (id) => results.entries.find((e) => e.id === id)!,
    );
    expect(h!.status).toBe("timed-out");
    expect(h!.failure).toMatchObject({ phase: "load" });
    expect(h!.failure!.message).toMatch(/no result within 4 s/);
    expect(h!.phases.filter((p) => p.status === "skipped")).toHaveLength(5);
    expect(b!.status).toBe("failed");
    expect(b!.failure!.phase).toBe("load");
    expect(b!.failure!.message).toMatch(/boom: no device here/);
    expect(t!.status, t!.failure?.message).toBe("ok");
    expect(t!.conformance!.passed).toBeGreaterThan(0);
    expect(t!.conformance!.failed).toBe(0);
    expect(t!.conformance!.notImplemented).toBeGreaterThan(0); // the CNN checks: reported, not dropped
    expect(t!.speed.net222StepsPerSecond!.median).toBeGreaterThan(0);
    expect(t!.speed.trainImagesPerSecond).toBeNull();
    expect(t!.phases.find((p) => p.name === "train-speed")!.detail).toMatch(/no CNN/);
  }, 150_000);

  it("rejects bad options with a message naming the option", async () => {
    const r = await nnspec(["bench", "--timeout-s", "-3", "--epochs", "x"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/option --timeout-s: must be > 0/);
    expect(r.stderr).toMatch(/option --epochs: expected an integer/);
  });
});
