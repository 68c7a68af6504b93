import {
  CNN_BLOCK_RECORDS,
  CNN_BUFFERS,
  CNN_LAYERS,
  CNN_PARAMS,
  CNN_PARAM_COUNT,
  DROPOUT_LAYERS,
  INPUT_SHAPE,
  NUM_CLASSES,
  dropoutRate,
  dropoutRatesProblems,
  layerShapes,
  mix32,
  validateLabels,
  validateOptimizerState,
  type BlockName,
  type CnnForwardOptions,
  type CnnForwardResult,
  type CnnModel,
  type CnnOps,
  type CnnTensors,
  type FloatArray,
  type SgdStep,
  type SummaryRow,
} from "@nnspec/spec";
import { MAX_PAGES, OP, instantiate, kernelModule, sharedMemory, type KernelExports } from "./kernels.ts";
import { singleThread, startWorkers, type ThreadPool } from "./threads.ts";

const PAGE = 65536;
const PIXELS = INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2];
/** Head rows (logits, log-probabilities) are 16 floats apart in wasm memory (assembly/head.ts). */
const HEAD_ROW = 16;
/** Eval batches larger than the model's capacity run in chunks of at least this many images (eval is per image). */
const EVAL_CHUNK = 256;

/** Names of the profiled kernels, in the order of assembly/profile.ts's Kernel enum. */
export const KERNELS = [
  "conv forward",
  "BN statistics (incl. barrier waits)",
  "BN + ReLU forward",
  "max-pool forward",
  "dropout",
  "GAP + linear + log-softmax",
  "NLL + head backward",
  "BN backward sums (incl. barrier waits)",
  "BN + ReLU backward",
  "conv filter gradient",
  "conv input gradient",
  "max-pool backward",
  "gradient reduction (incl. barrier waits)",
] as const;

/**
 * Where each recorded block lives in wasm memory: a conv block's output (padded NHWC), a pool's output (padded,
 * after its dropout), or a head row. Derived from spec's record rule (CNN_BLOCK_RECORDS) over the layer list,
 * so what is recorded is the contract's choice, not this backend's.
 */
type Source =
  | { readonly kind: "block"; readonly k: number; readonly size: number }
  | { readonly kind: "pool"; readonly j: number; readonly size: number }
  | { readonly kind: "head"; readonly which: "gap" | "logits" | "logProbs"; readonly width: number };

function recordSources(): Map<BlockName, Source> {
  const shapes = layerShapes();
  const out = new Map<BlockName, Source>();
  let pools = 0;
  CNN_LAYERS.forEach((layer, i) => {
    if (layer.type === "maxpool2d") pools++;
    const name = CNN_BLOCK_RECORDS[i];
    if (!name) return;
    const shape = shapes[i]!;
    const prev = CNN_LAYERS[i - 1];
    if (layer.type === "relu" && prev?.type === "batchnorm2d")
      out.set(name, { kind: "block", k: Number(prev.name.replace(/^bn/, "")), size: shape[1]! });
    else if (layer.type === "maxpool2d" || (layer.type === "dropout" && prev?.type === "maxpool2d"))
      out.set(name, { kind: "pool", j: pools, size: shape[1]! });
    else if (layer.type === "gap") out.set(name, { kind: "head", which: "gap", width: shape[0]! });
    else if (layer.type === "linear") out.set(name, { kind: "head", which: "logits", width: shape[0]! });
    else if (layer.type === "logsoftmax") out.set(name, { kind: "head", which: "logProbs", width: shape[0]! });
    else throw new Error(`wasm CNN: no buffer holds the output of layer ${i} (${layer.type}), recorded as ${name}`);
  });
  return out;
}
const RECORDS = recordSources();

/**
 * The dropout rule's per-layer part (spec/src/rng.ts): dropoutHash(seed, layer, step, index) =
 * mix32(prefix ^ index) with prefix = mix32(mix32(seed ^ 0x9e3779b9) ^ (layer·0x85ebca6b + step)); the kernels
 * hash the indices, this computes the prefix once per layer and forward.
 */
export function dropoutPrefix(seed: number, layer: number, step: number): number {
  return mix32(mix32((seed ^ 0x9e3779b9) >>> 0) ^ ((layer * 0x85ebca6b + step) >>> 0));
}

/** The torchsummary rows of this backend's network: the layers assembly/net.ts runs, with their parameter counts. */
function summaryRows(): SummaryRow[] {
  const shapes = layerShapes();
  const rows: SummaryRow[] = [];
  const types: Partial<Record<string, string>> = {
    conv2d: "Conv2d",
    batchnorm2d: "BatchNorm2d",
    maxpool2d: "MaxPool2d",
    dropout: "Dropout",
    linear: "Linear",
  };
  CNN_LAYERS.forEach((l, i) => {
    const type = types[l.type];
    if (!type) return;
    const name = (l as { name: string }).name;
    const params = CNN_PARAMS.filter((p) => p.layer === name).reduce((a, p) => a + p.size, 0);
    rows.push({ layer: `${type}-${rows.length + 1}`, outputShape: shapes[i]!, params });
  });
  return rows;
}

export interface CnnOpsOptions {
  readonly threads: number;
}

/**
 * The wasm backend's CNN operations: each model owns a shared memory and (threads > 1) a pool of workers.
 * `disposeAll` disposes the models still alive (the backend's dispose), so no worker outlives its backend.
 */
export function createCnnOps(options: CnnOpsOptions): CnnOps & { disposeAll(): Promise<void> } {
  const live = new Set<WasmCnnModel>();
  return {
    async create(init) {
      const module = await kernelModule();
      const ex = instantiate(module, sharedMemory());
      if (ex.paramCount() !== CNN_PARAM_COUNT)
        throw new Error(
          `wasm CNN: the kernels hold ${ex.paramCount()} parameters, the architecture ${CNN_PARAM_COUNT}`,
        );
      const model = new WasmCnnModel(ex, module, options.threads, () => live.delete(model));
      model.load(init);
      live.add(model);
      return model;
    },
    async disposeAll() {
      await Promise.all([...live].map((m) => m.dispose()));
    },
  };
}

export class WasmCnnModel implements CnnModel {
  private capacity = 0;
  private f32!: Float32Array;
  private i32!: Int32Array;
  private pool: ThreadPool | null = null;
  private starting: Promise<ThreadPool> | null = null;
  private trainBatch = 0; // n of the last train forward (0: none, or overwritten by an eval pass)
  private haveGradients = false;
  private firstStep = true;
  private numBatchesTracked: number[] = new Array(9).fill(0);
  private disposed = false;
  private running = false; // inside forward/backward (see exclusive)

  constructor(
    private readonly ex: KernelExports,
    private readonly module: WebAssembly.Module,
    private readonly threads: number,
    private readonly onDispose: () => void = () => {},
  ) {
    this.reserve(1);
  }

  /** Lays the memory out for batches of up to `n` images (keeps parameters and optimizer state). */
  private reserve(n: number): void {
    if (n <= this.capacity) return;
    const end = this.ex.plan(n, this.threads);
    const pages = Math.ceil(end / PAGE);
    if (pages > MAX_PAGES)
      throw new Error(
        `wasm CNN: a batch of ${n} needs ${(end / 2 ** 30).toFixed(2)} GiB, more than the ${(MAX_PAGES * PAGE) / 2 ** 30} GiB a model may use`,
      );
    const have = this.ex.memory.buffer.byteLength / PAGE;
    if (pages > have) this.ex.memory.grow(pages - have);
    this.f32 = new Float32Array(this.ex.memory.buffer);
    this.i32 = new Int32Array(this.ex.memory.buffer);
    // The per-batch area moved: clear it (the borders of padded buffers must read 0) and forget the batch in it.
    const start = this.ex.batchArea();
    new Uint8Array(this.ex.memory.buffer, start, end - start).fill(0);
    this.capacity = n;
    this.trainBatch = 0;
  }

  load(init: { parameters: CnnTensors; buffers?: CnnTensors }): void {
    let at = this.ex.paramsAddress() / 4;
    for (const spec of CNN_PARAMS) {
      const src = init.parameters[spec.name];
      if (!src) throw new Error(`wasm CNN: parameters.${spec.name} is missing`);
      if (src.length !== spec.size)
        throw new Error(`wasm CNN: parameters.${spec.name} has ${src.length} values, expected ${spec.size}`);
      this.f32.set(src, at);
      at += spec.size;
    }
    for (let k = 1; k <= 9; k++) {
      const mean = this.ex.runningMeanAddress(k) / 4,
        variance = this.ex.runningVarAddress(k) / 4;
      this.f32.fill(0, mean, mean + 16);
      this.f32.fill(1, variance, variance + 16);
    }
    if (init.buffers) {
      for (const spec of CNN_BUFFERS) {
        const src = init.buffers[spec.name];
        if (!src) throw new Error(`wasm CNN: buffers.${spec.name} is missing`);
        if (src.length !== spec.size)
          throw new Error(`wasm CNN: buffers.${spec.name} has ${src.length} values, expected ${spec.size}`);
        const k = Number(spec.layer.replace(/^bn/, ""));
        if (spec.role === "running_mean") this.f32.set(src, this.ex.runningMeanAddress(k) / 4);
        else if (spec.role === "running_var") this.f32.set(src, this.ex.runningVarAddress(k) / 4);
        else this.numBatchesTracked[k - 1] = src[0]!;
      }
    }
    this.ex.packAllWeights();
  }

  private live(): void {
    if (this.disposed) throw new Error("wasm CNN: model used after dispose()");
  }

  /** Live and not inside another call (see exclusive). */
  private idle(): void {
    this.live();
    if (this.running) throw new Error("wasm CNN: a call was made while another was still running (await each call)");
  }

  /** The thread pool, started on the first job that has work for more than one thread. */
  private async threadsFor(n: number): Promise<ThreadPool> {
    if (this.threads === 1 || n < 2) return this.pool ?? singleThread(this.ex);
    if (this.pool) return this.pool;
    this.starting ??= startWorkers(this.ex, this.module, this.threads);
    this.pool = await this.starting;
    return this.pool;
  }

  private async runJob(op: number, n: number): Promise<void> {
    const pool = await this.threadsFor(n);
    this.ex.setJob(op, n, pool.threads);
    await pool.run();
  }

  /**
   * Runs a call that works on the model's memory, one at a time: the threads share one control block and the
   * buffers, so an overlapping call (not awaited) would corrupt the running one. The contract's calls are sequential.
   */
  private async exclusive<T>(body: () => Promise<T>): Promise<T> {
    this.idle();
    this.running = true;
    try {
      return await body();
    } finally {
      this.running = false;
    }
  }

  /** Starts (true) or stops per-kernel profiling of thread 0 (bench/train-step.ts --profile); starting clears it. */
  setProfiling(on: boolean): void {
    this.ex.setProfiling(on);
  }

  /** Milliseconds per kernel since profiling started, in the order of assembly/profile.ts's Kernel enum. */
  profile(): Record<(typeof KERNELS)[number], number> {
    return Object.fromEntries(KERNELS.map((k, i) => [k, this.ex.profileMs(i)])) as Record<
      (typeof KERNELS)[number],
      number
    >;
  }

  async summary(): Promise<SummaryRow[]> {
    this.live();
    return summaryRows();
  }

  async forward(x: FloatArray, n: number, options: CnnForwardOptions): Promise<CnnForwardResult> {
    return this.exclusive(() => this.forwardAll(x, n, options));
  }

  private async forwardAll(x: FloatArray, n: number, options: CnnForwardOptions): Promise<CnnForwardResult> {
    if (!Number.isInteger(n) || n < 1) throw new Error(`wasm CNN: batch size must be a positive integer, got ${n}`);
    if (x.length !== n * PIXELS) throw new Error(`wasm CNN: input has ${x.length} values, expected ${n}×${PIXELS}`);
    const rateProblems = options.dropout?.rates ? dropoutRatesProblems(options.dropout.rates) : [];
    if (rateProblems.length) throw new Error(`wasm CNN: ${rateProblems.join("; ")}`);
    const train = options.mode === "train";
    if (train) return this.forwardChunk(x, n, options, true);
    // eval is per image: large batches run in chunks so memory stays at the training batch's size
    const chunk = Math.max(this.capacity, Math.min(n, EVAL_CHUNK));
    if (n <= chunk) return this.forwardChunk(x, n, options, false);
    const logProbs = new Float32Array(n * NUM_CLASSES);
    const blocks: Partial<Record<BlockName, Float32Array>> = {};
    for (let i0 = 0; i0 < n; i0 += chunk) {
      const m = Math.min(chunk, n - i0);
      const r = await this.forwardChunk(x.subarray(i0 * PIXELS, (i0 + m) * PIXELS), m, options, false);
      logProbs.set(r.logProbs, i0 * NUM_CLASSES);
      for (const [name, v] of Object.entries(r.blocks ?? {}) as [BlockName, Float32Array][]) {
        blocks[name] ??= new Float32Array((v.length / m) * n);
        const all = blocks[name];
        all.set(v, (v.length / m) * i0);
      }
    }
    return options.record ? { logProbs, blocks } : { logProbs };
  }

  private async forwardChunk(
    x: FloatArray,
    n: number,
    options: CnnForwardOptions,
    train: boolean,
  ): Promise<CnnForwardResult> {
    this.reserve(n);
    this.f32.set(x, this.ex.inputAddress() / 4);
    const dropout = train ? options.dropout : undefined;
    this.ex.setDropout(dropout !== undefined);
    if (dropout) {
      // Set on every train forward, with this forward's rates (a recipe may set them); backward reads the factors
      // the forward recorded (scale or 0), so it needs no rate.
      for (const l of DROPOUT_LAYERS) {
        const p = dropoutRate(dropout, l.index);
        this.ex.setDropoutLayer(
          l.index,
          dropoutPrefix(dropout.seed, l.index, dropout.step),
          Math.floor(p * 4294967296),
          1 / (1 - p),
        );
      }
    }
    this.trainBatch = 0; // the buffers are being overwritten
    await this.runJob(train ? OP.forwardTrain : OP.forwardEval, n);
    if (train) {
      this.trainBatch = n;
      for (let k = 0; k < 9; k++) this.numBatchesTracked[k]! += 1;
    }
    const logProbs = this.headRows("logProbs", n, NUM_CLASSES);
    if (!options.record) return { logProbs };
    const blocks: Partial<Record<BlockName, Float32Array>> = {};
    for (const [name, source] of RECORDS) blocks[name] = this.read(source, n);
    return { logProbs, blocks };
  }

  private headRows(which: "gap" | "logits" | "logProbs", n: number, width: number): Float32Array {
    const at =
      (which === "gap"
        ? this.ex.gapAddress()
        : which === "logits"
          ? this.ex.logitsAddress()
          : this.ex.logProbsAddress()) / 4;
    const out = new Float32Array(n * width);
    for (let i = 0; i < n; i++) out.set(this.f32.subarray(at + i * HEAD_ROW, at + i * HEAD_ROW + width), i * width);
    return out;
  }

  /** A recorded block in PyTorch's NCHW order, from its padded NHWC buffer. */
  private read(source: Source, n: number): Float32Array {
    if (source.kind === "head") return this.headRows(source.which, n, source.width);
    const S = source.size,
      P = S + 2,
      C = 16;
    const base = (source.kind === "block" ? this.ex.blockAddress(source.k) : this.ex.poolAddress(source.j)) / 4;
    const out = new Float32Array(n * C * S * S);
    let o = 0;
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < C; c++) {
        for (let y = 0; y < S; y++) {
          for (let x = 0; x < S; x++) out[o++] = this.f32[base + ((i * P + y + 1) * P + x + 1) * C + c]!;
        }
      }
    }
    return out;
  }

  async backward(labels: ArrayLike<number>): Promise<{ loss: number }> {
    return this.exclusive(() => this.backwardBatch(labels));
  }

  private async backwardBatch(labels: ArrayLike<number>): Promise<{ loss: number }> {
    const n = this.trainBatch;
    if (n === 0) throw new Error("wasm CNN: backward() needs a train-mode forward() just before it");
    validateLabels(labels, n, NUM_CLASSES, "wasm CNN");
    const at = this.ex.labelsAddress() / 4;
    for (let i = 0; i < n; i++) this.i32[at + i] = labels[i]!;
    await this.runJob(OP.backward, n);
    this.haveGradients = true;
    return { loss: this.ex.lastLoss() };
  }

  private tensors(address: number): CnnTensors {
    let at = address / 4;
    const out: CnnTensors = {};
    for (const p of CNN_PARAMS) {
      out[p.name] = this.f32.slice(at, at + p.size);
      at += p.size;
    }
    return out;
  }

  async gradients(): Promise<CnnTensors> {
    this.idle();
    if (!this.haveGradients) throw new Error("wasm CNN: gradients() before backward()");
    return this.tensors(this.ex.gradsAddress());
  }

  async step(sgd: SgdStep): Promise<void> {
    this.idle();
    if (!this.haveGradients) throw new Error("wasm CNN: step() before backward()");
    this.ex.sgd(sgd.lr, sgd.momentum, sgd.weightDecay, this.firstStep);
    this.firstStep = false;
  }

  async optimizerState(): Promise<CnnTensors> {
    this.idle();
    return this.firstStep ? {} : this.tensors(this.ex.momentumAddress());
  }

  async setOptimizerState(state: CnnTensors): Promise<void> {
    this.idle();
    if (validateOptimizerState(state, "wasm CNN") === "empty") {
      this.firstStep = true;
      return;
    }
    let at = this.ex.momentumAddress() / 4;
    for (const p of CNN_PARAMS) {
      this.f32.set(state[p.name]!, at);
      at += p.size;
    }
    this.firstStep = false;
  }

  async parameters(): Promise<CnnTensors> {
    this.idle();
    return this.tensors(this.ex.paramsAddress());
  }

  async buffers(): Promise<CnnTensors> {
    this.idle();
    const out: CnnTensors = {};
    for (const b of CNN_BUFFERS) {
      const k = Number(b.layer.replace(/^bn/, ""));
      if (b.role === "running_mean")
        out[b.name] = this.f32.slice(this.ex.runningMeanAddress(k) / 4, this.ex.runningMeanAddress(k) / 4 + 16);
      else if (b.role === "running_var")
        out[b.name] = this.f32.slice(this.ex.runningVarAddress(k) / 4, this.ex.runningVarAddress(k) / 4 + 16);
      else out[b.name] = Float32Array.of(this.numBatchesTracked[k - 1]!);
    }
    return out;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.onDispose();
    const pool = this.pool ?? (this.starting ? await this.starting.catch(() => null) : null);
    await pool?.close();
  }
}
