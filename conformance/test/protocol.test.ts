import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  FrameDecoder,
  ProtocolError,
  encodeFrame,
  judgeMessageSchema,
  PROTOCOL_METHODS,
  parseWith,
} from "@nnspec/spec";
import { EXIT, conformanceReportSchema } from "@nnspec/conformance";
import { parseCommandLine, splitCommandLine } from "@nnspec/conformance/node";
import { runCli } from "./helpers/run-cli.ts";

const dir = mkdtempSync(join(tmpdir(), "nnspec-protocol-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const concat = (parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

describe("frames (spec/src/protocol.ts)", () => {
  const message = {
    type: "call",
    id: 7,
    method: "model.forward",
    args: {
      model: 1,
      x: Float64Array.from([1.5, -2, NaN]),
      n: 1,
      options: { mode: "train" },
      extra: [Float32Array.from([0.25]), Infinity, -Infinity, NaN],
    },
  };

  it("a message with tensors and non-finite numbers round-trips, whatever the chunking", () => {
    const bytes = concat(encodeFrame(message));
    const header = new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(10)));
    expect(JSON.parse(header).tensors).toEqual([
      { dtype: "float64", length: 3 },
      { dtype: "float32", length: 1 },
    ]);
    expect(header).toContain(`"x":{"$tensor":0}`);
    expect(header).toContain(`{"$float":"Infinity"},{"$float":"-Infinity"},{"$float":"NaN"}`);
    expect(bytes.length).toBe(header.length + 1 + 3 * 8 + 4);
    for (const size of [1, 3, 7, bytes.length]) {
      const d = new FrameDecoder();
      const got: Record<string, unknown>[] = [];
      for (let i = 0; i < bytes.length; i += size) got.push(...d.push(bytes.subarray(i, i + size)));
      expect(got).toHaveLength(1);
      const m = got[0] as typeof message;
      expect(m.args.x).toBeInstanceOf(Float64Array);
      expect(Array.from(m.args.x)).toEqual([1.5, -2, NaN]);
      expect(m.args.extra[0]).toBeInstanceOf(Float32Array);
      expect(m.args.extra.slice(1)).toEqual([Infinity, -Infinity, NaN]);
      expect(d.buffered).toBe(0);
      expect(() => parseWith(judgeMessageSchema, m, "test")).not.toThrow();
    }
  });

  it("several frames in one chunk; other typed arrays become plain lists", () => {
    const two = concat([...encodeFrame({ a: Int32Array.from([1, 2]) }), ...encodeFrame({ b: Float32Array.from([3]) })]);
    const got = new FrameDecoder().push(two);
    expect(got[0]).toEqual({ a: [1, 2] });
    expect(Array.from(got[1]!.b as Float32Array)).toEqual([3]);
  });

  it("refuses what is not a frame: not JSON, a bad tensor list, a tensor nobody announced", () => {
    const enc = new TextEncoder();
    expect(() => new FrameDecoder().push(enc.encode("hello from a print()\n"))).toThrow(ProtocolError);
    expect(() => new FrameDecoder().push(enc.encode(`{"tensors":[{"dtype":"int8","length":1}]}\n`))).toThrow(
      /bad "tensors" list/,
    );
    expect(() => new FrameDecoder().push(enc.encode(`{"x":{"$tensor":0}}\n`))).toThrow(/names no announced tensor/);
    expect(() => new FrameDecoder().push(enc.encode(`{"x":{"$float":"nan"}}\n`))).toThrow(/expected "NaN"/);
  });

  it("results are validated: a number as a string, a missing field, a non-tensor are named", () => {
    const r = PROTOCOL_METHODS["model.backward"].result.safeParse({ loss: "0.5" });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.message).toBe('expected a number, got the string "0.5"');
    expect(PROTOCOL_METHODS["model.backward"].result.parse({ loss: NaN }).loss).toBeNaN();
    expect(
      PROTOCOL_METHODS["model.gradients"].result.safeParse({ "fc.bias": { length: 10 } }).error?.issues[0]?.message,
    ).toMatch(/expected a float32 or float64 tensor, got a plain object/);
  });
});

describe("cmd: command lines", () => {
  it("split like a shell's plain words, with quotes, escapes and leading NAME=value", () => {
    expect(splitCommandLine(`python3 'my backend.py' --x "a \\"b\\"" c\\ d`)).toEqual([
      "python3",
      "my backend.py",
      "--x",
      'a "b"',
      "c d",
    ]);
    expect(parseCommandLine("cmd:OMP_NUM_THREADS=1 /usr/bin/python3 b.py")).toMatchObject({
      command: "/usr/bin/python3",
      args: ["b.py"],
      env: { OMP_NUM_THREADS: "1" },
    });
  });
  it("shell syntax goes to /bin/sh, never half-interpreted", () => {
    expect(parseCommandLine("cmd:cd /x && python3 b.py")).toMatchObject({
      command: "/bin/sh",
      args: ["-c", "cd /x && python3 b.py"],
    });
    expect(parseCommandLine(`cmd:python3 "$HOME/b.py"`).command).toBe("/bin/sh");
    expect(parseCommandLine(`cmd:python3 '$HOME/b.py'`)).toMatchObject({ command: "python3", args: ["$HOME/b.py"] });
  });
  it("an empty or unterminated line is a usage error", () => {
    expect(() => parseCommandLine("cmd:")).toThrow(/needs a command line/);
    expect(() => parseCommandLine(`cmd:python3 "b.py`)).toThrow(/unterminated "/);
  });
});

describe("a backend in another language (nnspec conformance --backend cmd:...)", () => {
  it("the plain-Python 2-2-2 backend passes every 2-2-2 check of the full suite; CNN checks are not implemented", async () => {
    const report = join(dir, "python-net222.json");
    const r = await runCli([
      "conformance",
      "--backend",
      "cmd:python3 conformance/test/fixtures-protocol/net222_backend.py",
      "--report",
      report,
    ]);
    expect(r.status, r.stderr).toBe(EXIT.ok);
    expect(r.stdout).toMatch(/^conformance: python-net222 \(float64, process\) — \d+ checks/m);
    const rep = conformanceReportSchema.parse(JSON.parse(readFileSync(report, "utf8")));
    const net222 = rep.results.filter((x) => x.capability.startsWith("net222."));
    expect(net222.length).toBeGreaterThanOrEqual(36);
    expect(net222.every((x) => x.status === "pass")).toBe(true);
    expect(
      rep.results.filter((x) => x.capability.startsWith("cnn.")).every((x) => x.status === "not-implemented"),
    ).toBe(true);
    expect(rep.manifest?.environment).toBe("process");
  }, 120_000);

  it("a program that cannot start, or dies before it is ready, is a usage error naming it and showing its stderr", async () => {
    const report = join(dir, "not-started.json");
    const missing = await runCli(["conformance", "--backend", "cmd:no-such-program-xyz --flag", "--report", report]);
    expect(missing.status).toBe(EXIT.usage);
    expect(missing.stderr).toMatch(
      /backend "cmd:no-such-program-xyz --flag" could not be started: no-such-program-xyz: command not found/,
    );
    // The report is written all the same: no manifest, no results, and why.
    const rep = conformanceReportSchema.parse(JSON.parse(readFileSync(report, "utf8")));
    expect(rep.manifest).toBeUndefined();
    expect(rep.results).toEqual([]);
    expect(rep.incomplete?.reason).toMatch(/^the backend could not be started: .*command not found/);
    const dies = await runCli([
      "conformance",
      "--backend",
      `cmd:python3 -c "import sys; print('no torch here', file=sys.stderr); sys.exit(4)"`,
    ]);
    expect(dies.status).toBe(EXIT.usage);
    expect(dies.stderr).toMatch(/exited with code 4 before it was ready; its stderr ends with:\nno torch here/);
  });

  const torch = spawnSync("/usr/bin/python3", ["-c", "import torch"], { stdio: "ignore" }).status === 0;
  it.skipIf(!torch)(
    "the PyTorch float32 candidate (backends/pytorch) passes a CNN golden and a 2-2-2 trajectory",
    async () => {
      const report = join(dir, "pytorch.json");
      const r = await runCli([
        "conformance",
        "--backend",
        "cmd:/usr/bin/python3 backends/pytorch/backend.py",
        "--only-fixtures",
        "--fixture",
        "fixtures/cnn/ties-batch2-seed3.json",
        "fixtures/net222/lr-2.json",
        "--report",
        report,
      ]);
      expect(r.status, r.stdout.slice(-3000) + r.stderr).toBe(EXIT.ok);
      const rep = conformanceReportSchema.parse(JSON.parse(readFileSync(report, "utf8")));
      expect(rep.manifest).toMatchObject({ name: "pytorch", precision: "float32", environment: "process" });
      expect(rep.summary.failed).toBe(0);
      expect(rep.summary.notImplemented).toBe(0);
    },
    180_000,
  );
});
