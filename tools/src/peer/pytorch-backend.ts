import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { BackendLoadError } from "@nnspec/conformance/node";
import {
  BLOCK_OUTPUTS,
  CNN_BUFFERS,
  CNN_CAPABILITIES,
  CNN_PARAMS,
  DROPOUT_LAYERS,
  mix32,
  parseWith,
  validateLabels,
  validateOptimizerState,
  type Backend,
  type BlockName,
  type CnnForwardOptions,
  type CnnForwardResult,
  type CnnModel,
  type CnnTensors,
  type FloatArray,
  type Manifest,
  type SummaryRow,
} from "@nnspec/spec";

/**
 * The PyTorch peer as a CNN backend: `nnspec train --backend pytorch` runs the whole nnspec training loop (data order,
 * augmentation, initial parameters, schedule, evaluation, run record) with PyTorch doing forward, backward and the
 * SGD step in a python3 subprocess (tools/bench-peer/cnn_server.py). Dropout masks follow the spec's rule and are
 * computed here, so PyTorch sees the same masks as every backend. Not a judged backend: it is the peer the
 * backends' accuracy is compared with.
 */

export const pytorchOptionsSchema = z
  .object({
    precision: z
      .literal("float32", { errorMap: () => ({ message: "the PyTorch peer trains in float32 only" }) })
      .default("float32"),
    /** torch.set_num_threads: 1 keeps a shared machine usable and the speed comparable per core. */
    threads: z.coerce.number().int().min(1).max(256).default(1),
    python: z
      .string()
      .min(1)
      .default(process.env.NNSPEC_PYTHON ?? "/usr/bin/python3"),
  })
  .strict();
export type PytorchOptions = z.input<typeof pytorchOptionsSchema>;

const here = dirname(fileURLToPath(import.meta.url));
export const CNN_SERVER = resolve(here, "../../bench-peer/cnn_server.py");

interface Reply {
  header: Record<string, unknown> & { ok: boolean; error?: string };
  payload: Buffer;
}

/** One python3 process speaking the framed protocol of cnn_server.py; requests are answered in order. */
class PeerProcess {
  private readonly child: ChildProcess;
  private buf: Buffer = Buffer.alloc(0);
  private readonly waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private exited: Error | null = null;
  private stderrTail = "";

  constructor(python: string) {
    if (!existsSync(CNN_SERVER)) throw new Error(`PyTorch peer: ${CNN_SERVER} is missing`);
    this.child = spawn(python, [CNN_SERVER], { stdio: ["pipe", "pipe", "pipe"] });
    this.child.stdout!.on("data", (d: Buffer) => this.onData(d));
    this.child.stderr!.on("data", (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString("utf8")).slice(-2000);
    });
    const fail = (e: Error) => {
      this.exited ??= e;
      for (const w of this.waiting.splice(0)) w.reject(e);
    };
    this.child.on("error", (e) => fail(new Error(`PyTorch peer: cannot run ${python}: ${e.message}`)));
    this.child.on("exit", (code, signal) =>
      fail(
        new Error(
          `PyTorch peer exited (${signal ?? `code ${code}`})${this.stderrTail ? `: ${this.stderrTail.trim().split("\n").slice(-3).join(" | ")}` : ""}`,
        ),
      ),
    );
    this.child.stdin!.on("error", () => {}); // EPIPE after an exit is reported by "exit"
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      if (this.buf.length < 4) return;
      const hl = this.buf.readUInt32LE(0);
      if (this.buf.length < 8 + hl) return;
      const pl = this.buf.readUInt32LE(4 + hl);
      if (this.buf.length < 8 + hl + pl) return;
      const header = JSON.parse(this.buf.subarray(4, 4 + hl).toString("utf8")) as Reply["header"];
      const payload = Buffer.from(this.buf.subarray(8 + hl, 8 + hl + pl));
      this.buf = this.buf.subarray(8 + hl + pl);
      const w = this.waiting.shift();
      if (!w) continue;
      if (header.ok) w.resolve({ header, payload });
      else w.reject(new Error(`PyTorch peer: ${header.error ?? "failed"}`));
    }
  }

  request(header: Record<string, unknown>, payload: Uint8Array[] = []): Promise<Reply> {
    if (this.exited) return Promise.reject(this.exited);
    const h = Buffer.from(JSON.stringify(header), "utf8");
    const length = payload.reduce((a, p) => a + p.byteLength, 0);
    const head = Buffer.alloc(4);
    head.writeUInt32LE(h.length, 0);
    const pl = Buffer.alloc(4);
    pl.writeUInt32LE(length, 0);
    const p = new Promise<Reply>((resolve, reject) => this.waiting.push({ resolve, reject }));
    this.child.stdin!.write(
      Buffer.concat([head, h, pl, ...payload.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))]),
    );
    return p;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once("exit", () => r()));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await gone;
    clearTimeout(timer);
  }
}

const f32bytes = (a: ArrayLike<number>) => {
  const t = a instanceof Float32Array ? a : Float32Array.from(a);
  return new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
};
/** Split a float32 payload into tensors named and sized as `specs`. */
function tensorsOf(payload: Buffer, specs: readonly { name: string; size: number }[]): CnnTensors {
  const all = new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength));
  const expected = specs.reduce((a, s) => a + s.size, 0);
  if (all.length !== expected) throw new Error(`PyTorch peer: ${all.length} values, expected ${expected}`);
  const out: CnnTensors = {};
  let off = 0;
  for (const s of specs) {
    out[s.name] = all.slice(off, off + s.size);
    off += s.size;
  }
  return out;
}

/** Shapes of the three dropout inputs for a batch of n (after pool1, after pool2, before the average pool). */
const maskShapes = (n: number) => [
  [n, 16, 14, 14],
  [n, 16, 7, 7],
  [n, 16, 7, 7],
];

/**
 * The contract's dropout mask (spec rng.ts dropoutKeeps) of one layer as 0/1 bytes in NCHW order; the per-layer
 * prefix of dropoutHash is hoisted out of the loop (the test checks equality with dropoutKeeps).
 */
export function dropoutMaskBytes(seed: number, layer: number, step: number, p: number, count: number): Uint8Array {
  const prefix = mix32(mix32((seed ^ 0x9e3779b9) >>> 0) ^ ((layer * 0x85ebca6b + step) >>> 0));
  const threshold = Math.floor(p * 4294967296);
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = mix32(prefix ^ i) >= threshold ? 1 : 0;
  return out;
}

const summaryRowSchema = z
  .object({ layer: z.string(), outputShape: z.array(z.number().int()), params: z.number().int() })
  .strict();

let nextId = 1;

class PytorchModel implements CnnModel {
  private lastN = 0;
  constructor(
    private readonly peer: PeerProcess,
    private readonly id: number,
  ) {}

  async summary(): Promise<SummaryRow[]> {
    const r = await this.peer.request({ op: "summary" });
    return parseWith(z.array(summaryRowSchema), r.header.rows, "PyTorch peer summary");
  }

  async forward(x: FloatArray, n: number, o: CnnForwardOptions): Promise<CnnForwardResult> {
    if (x.length !== n * 784) throw new Error(`PyTorch peer: x has ${x.length} values for a batch of ${n}`);
    const payload: Uint8Array[] = [f32bytes(x)];
    const dropout = o.mode === "train" && o.dropout !== undefined;
    const shapes = maskShapes(n);
    if (dropout) {
      for (const [k, l] of DROPOUT_LAYERS.entries()) {
        const count = shapes[k]!.reduce((a, b) => a * b, 1);
        payload.push(dropoutMaskBytes(o.dropout!.seed, l.index, o.dropout!.step, l.p, count));
      }
    }
    const r = await this.peer.request(
      { op: "forward", id: this.id, n, mode: o.mode, dropout, record: Boolean(o.record), maskShapes: shapes },
      payload,
    );
    this.lastN = o.mode === "train" ? n : 0;
    // logProbs, then (record) every block in BLOCK_OUTPUTS order.
    const sizes = parseWith(z.array(z.number().int().min(0)), r.header.sizes, "PyTorch peer forward");
    const all = new Float32Array(
      r.payload.buffer.slice(r.payload.byteOffset, r.payload.byteOffset + r.payload.byteLength),
    );
    const parts: Float32Array[] = [];
    let off = 0;
    for (const size of sizes) {
      parts.push(all.subarray(off, off + size));
      off += size;
    }
    if (!o.record) return { logProbs: parts[0]! };
    const blocks: Partial<Record<BlockName, FloatArray>> = {};
    BLOCK_OUTPUTS.forEach((b, i) => {
      blocks[b] = parts[i + 1]!;
    });
    return { logProbs: parts[0]!, blocks };
  }

  async backward(labels: ArrayLike<number>): Promise<{ loss: number }> {
    validateLabels(labels, this.lastN, 10, "PyTorch peer");
    const r = await this.peer.request({ op: "backward", id: this.id }, [Uint8Array.from(labels)]);
    return { loss: Number(r.header.loss) };
  }

  async gradients(): Promise<CnnTensors> {
    return tensorsOf(
      (await this.peer.request({ op: "gradients", id: this.id, names: CNN_PARAMS.map((p) => p.name) })).payload,
      CNN_PARAMS,
    );
  }

  async step(sgd: { lr: number; momentum: number; weightDecay: number }): Promise<void> {
    await this.peer.request({
      op: "step",
      id: this.id,
      lr: sgd.lr,
      momentum: sgd.momentum,
      weightDecay: sgd.weightDecay,
    });
  }

  async parameters(): Promise<CnnTensors> {
    return tensorsOf(
      (await this.peer.request({ op: "parameters", id: this.id, names: CNN_PARAMS.map((p) => p.name) })).payload,
      CNN_PARAMS,
    );
  }

  async buffers(): Promise<CnnTensors> {
    return tensorsOf(
      (await this.peer.request({ op: "buffers", id: this.id, names: CNN_BUFFERS.map((b) => b.name) })).payload,
      CNN_BUFFERS,
    );
  }

  async optimizerState(): Promise<CnnTensors> {
    const r = await this.peer.request({ op: "optimizerState", id: this.id, names: CNN_PARAMS.map((p) => p.name) });
    return r.header.empty ? {} : tensorsOf(r.payload, CNN_PARAMS);
  }

  async setOptimizerState(state: CnnTensors): Promise<void> {
    const empty = validateOptimizerState(state, "PyTorch peer") === "empty";
    await this.peer.request(
      {
        op: "setOptimizerState",
        id: this.id,
        names: CNN_PARAMS.map((p) => p.name),
        sizes: CNN_PARAMS.map((p) => p.size),
      },
      empty ? [] : CNN_PARAMS.map((p) => f32bytes(state[p.name]!)),
    );
  }

  async dispose(): Promise<void> {
    await this.peer.request({ op: "dispose", id: this.id }).catch(() => {});
  }
}

export async function createBackend(options: Record<string, unknown> = {}): Promise<Backend> {
  const o = parseWith(pytorchOptionsSchema, options, "PyTorch peer options");
  const peer = new PeerProcess(o.python);
  let hello: Reply;
  try {
    hello = await peer.request({ op: "hello", threads: o.threads });
  } catch (err) {
    await peer.close();
    throw new BackendLoadError(
      `${(err as Error).message} (the PyTorch peer needs ${o.python} with torch: Debian package python3-torch)`,
      { cause: err },
    );
  }
  const torch = String(hello.header.torch);
  const manifest: Manifest = {
    name: "pytorch",
    version: torch.replace(/[^0-9A-Za-z.+-]/g, ""),
    precision: "float32",
    environment: "node",
    device: `PyTorch ${torch} CPU, ${String(hello.header.threads)} thread(s), python3 subprocess (the peer; batches and dropout masks from nnspec)`,
    // All of them: `nnspec conformance --backend ./tools/src/peer/pytorch-backend.ts` passes every CNN check at
    // float32 tolerances (spec/src/tolerance.ts).
    capabilities: [...CNN_CAPABILITIES],
  };
  return {
    manifest,
    cnn: {
      async create(init) {
        const id = nextId++;
        const buffers = init.buffers;
        const specs = [...CNN_PARAMS, ...(buffers ? CNN_BUFFERS : [])];
        const payload = specs.map((s) => {
          const t = (s.name in init.parameters ? init.parameters : buffers!)[s.name];
          if (!t || t.length !== s.size) throw new Error(`PyTorch peer: ${s.name} missing or of the wrong size`);
          return f32bytes(t);
        });
        await peer.request(
          { op: "create", id, names: specs.map((s) => s.name), sizes: specs.map((s) => s.size) },
          payload,
        );
        return new PytorchModel(peer, id);
      },
    },
    dispose: () => peer.close(),
  };
}
