/// <reference types="@webgpu/types" />
import {
  CNN_BLOCK_RECORDS,
  CNN_BUFFERS,
  CNN_LAYERS,
  CNN_PARAMS,
  DROPOUT_LAYERS,
  INPUT_SHAPE,
  dropoutRate,
  dropoutRatesProblems,
  validateLabels,
  validateOptimizerState,
  type BlockName,
  type CnnForwardOptions,
  type CnnForwardResult,
  type CnnModel,
  type CnnOps,
  type CnnTensors,
  type FloatArray,
  type LayerSpec,
  type SgdStep,
  type SummaryRow,
} from "@nnspec/spec";
import { grid1d, type Gpu, type UniformValue } from "./gpu.ts";

/**
 * The CNN on WGSL kernels. The architecture list (spec CNN_LAYERS) is compiled once into stages — conv + BatchNorm +
 * ReLU blocks, max-pools, dropouts, GAP, linear, log-softmax — whose kernels are recorded into one command encoder
 * per contract call: a whole forward, a whole backward, the SGD update (submitted with the next forward). Every
 * activation, gradient, parameter and statistic stays on the device; only what a call returns is read back
 * (forward: log-probabilities and, when recording, the block outputs; backward: the loss).
 */

const PARAM_SIZES = CNN_PARAMS.map((p) => p.size);
const PARAM_TOTAL = PARAM_SIZES.reduce((a, b) => a + b, 0);
const OFFSET = new Map(CNN_PARAMS.map((p, i) => [p.name, PARAM_SIZES.slice(0, i).reduce((a, b) => a + b, 0)]));
const PER_SAMPLE = INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2];
/** The conv kernels compute 16 output channels per invocation (four vec4 accumulators). */
const KERNEL_CHANNELS = 16;
const TILE = 8;

type Chw = readonly [number, number, number];
const size = (s: Chw) => s[0] * s[1] * s[2];
const u = (v: number): UniformValue => ({ u: v });
const f = (v: number): UniformValue => ({ f: v });

interface BlockStage {
  readonly kind: "block";
  readonly conv: Extract<LayerSpec, { type: "conv2d" }>;
  readonly bn: Extract<LayerSpec, { type: "batchnorm2d" }>;
  readonly relu: boolean;
  /** Index of this BatchNorm among the model's (running/stat buffer slot). */
  readonly bnIndex: number;
  readonly in: Chw;
  readonly out: Chw;
}
interface PoolStage {
  readonly kind: "pool";
  readonly spec: Extract<LayerSpec, { type: "maxpool2d" }>;
  readonly in: Chw;
  readonly out: Chw;
}
interface DropoutStage {
  readonly kind: "dropout";
  readonly spec: Extract<LayerSpec, { type: "dropout" }>;
  readonly in: Chw;
  readonly out: Chw;
  readonly inPlace: boolean;
}
interface GapStage {
  readonly kind: "gap";
  readonly in: Chw;
  readonly out: Chw;
}
interface LinearStage {
  readonly kind: "linear";
  readonly spec: Extract<LayerSpec, { type: "linear" }>;
  readonly in: Chw;
  readonly out: Chw;
}
interface LogSoftmaxStage {
  readonly kind: "logsoftmax";
  readonly in: Chw;
  readonly out: Chw;
}
type Stage = (BlockStage | PoolStage | DropoutStage | GapStage | LinearStage | LogSoftmaxStage) & {
  readonly record: BlockName | null;
};

const BN_LAYERS = CNN_LAYERS.filter((l): l is Extract<LayerSpec, { type: "batchnorm2d" }> => l.type === "batchnorm2d");
const STAT_SLOT = 2 * Math.max(...BN_LAYERS.map((l) => l.channels));

/** CNN_LAYERS → stages. Throws where the list asks for something these kernels do not implement. */
function compileStages(label: string): Stage[] {
  const stages: Stage[] = [];
  let shape: Chw = [INPUT_SHAPE[0], INPUT_SHAPE[1], INPUT_SHAPE[2]];
  const layers = CNN_LAYERS;
  const bad = (why: string): never => {
    throw new Error(`${label} CNN: ${why}`);
  };
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i]!;
    const rec = CNN_BLOCK_RECORDS[i] ?? null;
    switch (l.type) {
      case "conv2d": {
        const bn = layers[i + 1];
        if (bn?.type !== "batchnorm2d")
          return bad(`${l.name} is not followed by a BatchNorm (these kernels fuse conv → BatchNorm → ReLU)`);
        if (l.kernel !== 3 || l.padding !== 1) return bad(`${l.name}: only 3×3 convolutions with padding 1`);
        if (l.outChannels !== KERNEL_CHANNELS || bn.channels !== KERNEL_CHANNELS)
          return bad(`${l.name}: the kernels compute ${KERNEL_CHANNELS} output channels`);
        if (shape[0] !== l.inChannels || l.inChannels > KERNEL_CHANNELS)
          return bad(`${l.name} gets ${shape[0]} channels, expects ${l.inChannels} (at most ${KERNEL_CHANNELS})`);
        const relu = layers[i + 2]?.type === "relu";
        const record = relu ? (CNN_BLOCK_RECORDS[i + 2] ?? null) : (CNN_BLOCK_RECORDS[i + 1] ?? null);
        const out: Chw = [l.outChannels, shape[1], shape[2]];
        stages.push({ kind: "block", conv: l, bn, relu, bnIndex: BN_LAYERS.indexOf(bn), in: shape, out, record });
        shape = out;
        i += relu ? 2 : 1;
        break;
      }
      case "batchnorm2d":
      case "relu":
        return bad(`${l.type} at layer ${i} outside a conv → BatchNorm → ReLU block`);
      case "maxpool2d": {
        if (shape[1] % l.size !== 0 || shape[2] % l.size !== 0)
          return bad(`${l.name}: ${shape[1]}×${shape[2]} is not a multiple of the ${l.size}×${l.size} window`);
        const out: Chw = [shape[0], shape[1] / l.size, shape[2] / l.size];
        stages.push({ kind: "pool", spec: l, in: shape, out, record: rec });
        shape = out;
        break;
      }
      case "dropout":
        // In place after a pool (backward needs only the pool's argmax); a copy after a block, whose output the
        // ReLU backward and the record still need.
        stages.push({
          kind: "dropout",
          spec: l,
          in: shape,
          out: shape,
          inPlace: stages.at(-1)?.kind === "pool",
          record: rec,
        });
        break;
      case "gap": {
        const out: Chw = [shape[0], 1, 1];
        stages.push({ kind: "gap", in: shape, out, record: rec });
        shape = out;
        break;
      }
      case "linear": {
        if (size(shape) !== l.inFeatures) return bad(`${l.name} gets ${size(shape)} features, expects ${l.inFeatures}`);
        const out: Chw = [l.outFeatures, 1, 1];
        stages.push({ kind: "linear", spec: l, in: shape, out, record: rec });
        shape = out;
        break;
      }
      case "logsoftmax":
        if (i !== layers.length - 1) return bad("log-softmax must be the last layer (the NLL backward starts from it)");
        stages.push({ kind: "logsoftmax", in: shape, out: shape, record: rec });
        break;
    }
  }
  if (stages.at(-1)?.kind !== "logsoftmax") bad("the network must end in log-softmax");
  return stages;
}

/** The per-batch-size device buffers: stage outputs and the gradient ping-pong pair. */
interface BatchBuffers {
  readonly n: number;
  readonly x: GPUBuffer;
  /** Per stage: its output (a block's post-ReLU y), and what else it keeps: a block's conv output z, a pool's argmax. */
  readonly out: (GPUBuffer | null)[];
  readonly z: (GPUBuffer | null)[];
  readonly arg: (GPUBuffer | null)[];
  readonly gA: GPUBuffer;
  readonly gB: GPUBuffer;
  readonly dLogits: GPUBuffer;
  readonly dFeatures: GPUBuffer;
  readonly labels: GPUBuffer;
  /** Per-image partial sums of the filter gradients, [image][weight]. */
  readonly partial: GPUBuffer;
  readonly all: GPUBuffer[];
}

/** One train forward's dropout: the mask rule's seed and step and each dropout layer's rate (DROPOUT_LAYERS order). */
interface ForwardDropout {
  readonly seed: number;
  readonly step: number;
  readonly rates: readonly number[];
}

interface Pending {
  readonly b: BatchBuffers;
  /** The buffer each stage read as input in that forward. */
  readonly inputs: GPUBuffer[];
  /** That forward's dropout (its rates resolved), which backward's mask recomputation must match; null = off. */
  readonly dropout: ForwardDropout | null;
}

let nextModelId = 0;

export class WebGpuCnnModel implements CnnModel {
  private readonly id = `m${nextModelId++}`;
  private readonly stages: Stage[];
  private readonly params: GPUBuffer;
  private readonly grads: GPUBuffer;
  private readonly momentum: GPUBuffer;
  private readonly running: GPUBuffer;
  private readonly stats: GPUBuffer;
  private readonly loss: GPUBuffer;
  private readonly numBatchesTracked: number[];
  private readonly batches = new Map<number, BatchBuffers>();
  private pending: Pending | null = null;
  private haveGrads = false;
  private haveMomentum = false;
  private disposed = false;

  constructor(
    private readonly gpu: Gpu,
    init: { parameters: CnnTensors; buffers?: CnnTensors },
    private readonly label: string,
  ) {
    this.stages = compileStages(label);
    const flat = new Float32Array(PARAM_TOTAL);
    for (const p of CNN_PARAMS)
      flat.set(this.checked("parameters", p.name, init.parameters[p.name], p.size), OFFSET.get(p.name)!);
    const running = new Float32Array(BN_LAYERS.length * STAT_SLOT);
    this.numBatchesTracked = BN_LAYERS.map((l, k) => {
      const buf = (role: string) => CNN_BUFFERS.find((b) => b.layer === l.name && b.role === role)!;
      const mean = buf("running_mean"),
        variance = buf("running_var"),
        count = buf("num_batches_tracked");
      running.set(
        init.buffers
          ? this.checked("buffers", mean.name, init.buffers[mean.name], mean.size)
          : new Float32Array(l.channels),
        k * STAT_SLOT,
      );
      running.set(
        init.buffers
          ? this.checked("buffers", variance.name, init.buffers[variance.name], variance.size)
          : new Float32Array(l.channels).fill(1),
        k * STAT_SLOT + l.channels,
      );
      return init.buffers ? Number(this.checked("buffers", count.name, init.buffers[count.name], 1)[0]) : 0;
    });
    this.params = gpu.storage("parameters", PARAM_TOTAL, flat);
    this.grads = gpu.storage("gradients", PARAM_TOTAL);
    this.momentum = gpu.storage("momentum", PARAM_TOTAL);
    this.running = gpu.storage("running stats", running.length, running);
    this.stats = gpu.storage("batch stats", running.length);
    this.loss = gpu.storage("loss", 1);
  }

  private checked(group: string, name: string, src: FloatArray | undefined, n: number): FloatArray {
    if (!src) throw new Error(`${this.label} CNN: ${group}.${name} is missing`);
    if (src.length !== n)
      throw new Error(`${this.label} CNN: ${group}.${name} has ${src.length} values, expected ${n}`);
    return src;
  }

  private live(): void {
    if (this.disposed) throw new Error(`${this.label} CNN: model used after dispose()`);
  }

  private key(name: string): string {
    return `${this.id}:${name}`;
  }

  /** Device buffers for batch size n (the last two sizes are kept: the bench alternates batch 128 and 1). */
  private batch(n: number): BatchBuffers {
    const have = this.batches.get(n);
    if (have) {
      this.batches.delete(n);
      this.batches.set(n, have); // most recently used last
      return have;
    }
    if (this.batches.size >= 2) {
      const [oldest, old] = this.batches.entries().next().value as [number, BatchBuffers];
      this.gpu.releaseAll(old.all);
      this.batches.delete(oldest);
    }
    const all: GPUBuffer[] = [];
    const make = (what: string, elements: number) => {
      const b = this.gpu.storage(`${what} (batch ${n})`, elements);
      all.push(b);
      return b;
    };
    const out: (GPUBuffer | null)[] = [],
      z: (GPUBuffer | null)[] = [],
      arg: (GPUBuffer | null)[] = [];
    let largest = size([INPUT_SHAPE[0], INPUT_SHAPE[1], INPUT_SHAPE[2]]);
    let weights = 1;
    this.stages.forEach((s, i) => {
      largest = Math.max(largest, size(s.in), size(s.out));
      if (s.kind === "block") weights = Math.max(weights, s.out[0] * s.in[0] * 9);
      z.push(s.kind === "block" ? make(`conv output ${i}`, n * size(s.out)) : null);
      arg.push(s.kind === "pool" ? make(`argmax ${i}`, n * size(s.out)) : null);
      out.push(s.kind === "dropout" && s.inPlace ? null : make(`stage ${i} output`, n * size(s.out)));
    });
    const last = this.stages.at(-1)!;
    const features = this.stages.find((s): s is LinearStage & { record: BlockName | null } => s.kind === "linear");
    const b: BatchBuffers = {
      n,
      out,
      z,
      arg,
      all,
      x: make("input", n * PER_SAMPLE),
      gA: make("gradient A", n * largest),
      gB: make("gradient B", n * largest),
      dLogits: make("∂loss/∂logits", n * size(last.out)),
      dFeatures: make("∂loss/∂features", n * (features ? size(features.in) : 1)),
      labels: make("labels", n),
      partial: make("filter-gradient partial sums", n * weights),
    };
    this.batches.set(n, b);
    return b;
  }

  async summary(): Promise<SummaryRow[]> {
    this.live();
    const rows: SummaryRow[] = [];
    const paramsOf = (layer: string) => CNN_PARAMS.filter((p) => p.layer === layer).reduce((a, p) => a + p.size, 0);
    const row = (type: string, shape: Chw | readonly number[], params: number) =>
      rows.push({ layer: `${type}-${rows.length + 1}`, outputShape: [...shape], params });
    for (const s of this.stages) {
      if (s.kind === "block") {
        row("Conv2d", s.out, paramsOf(s.conv.name));
        row("BatchNorm2d", s.out, paramsOf(s.bn.name));
      } else if (s.kind === "pool") row("MaxPool2d", s.out, 0);
      else if (s.kind === "dropout") row("Dropout", s.out, 0);
      else if (s.kind === "linear") row("Linear", [s.out[0]], paramsOf(s.spec.name));
    }
    return rows;
  }

  async forward(x: FloatArray, n: number, options: CnnForwardOptions): Promise<CnnForwardResult> {
    this.live();
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`${this.label} CNN: batch size must be a positive integer, got ${n}`);
    if (x.length !== n * PER_SAMPLE)
      throw new Error(`${this.label} CNN: input has ${x.length} values, expected ${n}×${PER_SAMPLE}`);
    const rateProblems = options.dropout?.rates ? dropoutRatesProblems(options.dropout.rates) : [];
    if (rateProblems.length) throw new Error(`${this.label} CNN: ${rateProblems.join("; ")}`);
    this.pending = null;
    const train = options.mode === "train";
    // rates resolved (and copied) now: backward recomputes the mask, so it must see this forward's rates
    const dropout: ForwardDropout | null =
      train && options.dropout
        ? {
            seed: options.dropout.seed,
            step: options.dropout.step,
            rates: DROPOUT_LAYERS.map((_, k) => dropoutRate(options.dropout, k)),
          }
        : null;
    const b = this.batch(n);
    const gpu = this.gpu;
    gpu.write(b.x, x instanceof Float32Array ? x : Float32Array.from(x));
    const inputs: GPUBuffer[] = [];
    const records: Array<{ name: BlockName; buffer: GPUBuffer; elements: number }> = [];
    let cur = b.x;
    this.stages.forEach((s, i) => {
      inputs.push(cur);
      const key = (what: string) => this.key(`${i}:${what}`);
      switch (s.kind) {
        case "block": {
          const [cin, h, w] = s.in;
          const tilesX = Math.ceil(w / TILE),
            tilesY = Math.ceil(h / TILE);
          const z = b.z[i]!,
            y = b.out[i]!;
          gpu.dispatch({
            pipeline: "conv3x3",
            bindings: [
              gpu.uniform(key("conv"), [
                u(n),
                u(cin),
                u(h),
                u(w),
                u(tilesX),
                u(OFFSET.get(`${s.conv.name}.weight`)!),
                u(OFFSET.get(`${s.conv.name}.bias`)!),
                u(1),
                u(cin),
                u(0),
                u(0),
                u(0),
              ]),
              cur,
              this.params,
              z,
            ],
            workgroups: [tilesX * tilesY, n],
          });
          const c = s.out[0],
            hw = h * w,
            slot = s.bnIndex * STAT_SLOT;
          if (train) {
            gpu.dispatch({
              pipeline: "bnStats",
              bindings: [
                gpu.uniform(key("stats"), [u(n), u(c), u(hw), u(slot), u(slot), u(1), f(s.bn.momentum), f(s.bn.eps)]),
                z,
                this.stats,
                this.running,
              ],
              workgroups: [c],
            });
          } else {
            gpu.dispatch({
              pipeline: "bnEvalStats",
              bindings: [
                gpu.uniform(key("evalStats"), [u(c), u(slot), u(slot), f(s.bn.eps)]),
                this.running,
                this.stats,
              ],
              workgroups: [1],
            });
          }
          gpu.dispatch({
            pipeline: "bnApply",
            bindings: [
              gpu.uniform(key("apply"), [
                u(n * c * hw),
                u(c),
                u(hw),
                u(slot),
                u(OFFSET.get(`${s.bn.name}.weight`)!),
                u(OFFSET.get(`${s.bn.name}.bias`)!),
                u(s.relu ? 1 : 0),
                u(0),
              ]),
              z,
              this.stats,
              this.params,
              y,
            ],
            workgroups: grid1d(n * c * hw),
          });
          cur = y;
          break;
        }
        case "pool": {
          const [c, ih, iw] = s.in,
            [, oh, ow] = s.out;
          const total = n * c * oh * ow;
          gpu.dispatch({
            pipeline: "maxpool",
            bindings: [
              gpu.uniform(key("pool"), [u(total), u(oh), u(ow), u(ih), u(iw), u(s.spec.size), u(0), u(0)]),
              cur,
              b.out[i]!,
              b.arg[i]!,
            ],
            workgroups: grid1d(total),
          });
          cur = b.out[i]!;
          break;
        }
        case "dropout": {
          if (!dropout) break; // identity: eval mode, or train mode without dropout
          const total = n * size(s.in);
          const uniform = gpu.uniform(key("dropout"), this.dropoutUniform(total, s.spec, dropout));
          if (s.inPlace)
            gpu.dispatch({ pipeline: "dropoutInPlace", bindings: [uniform, cur], workgroups: grid1d(total) });
          else {
            gpu.dispatch({ pipeline: "dropoutCopy", bindings: [uniform, cur, b.out[i]!], workgroups: grid1d(total) });
            cur = b.out[i]!;
          }
          break;
        }
        case "gap": {
          const [c, h, w] = s.in;
          gpu.dispatch({
            pipeline: "gap",
            bindings: [gpu.uniform(key("gap"), [u(n * c), u(h * w), u(0), u(0)]), cur, b.out[i]!],
            workgroups: grid1d(n * c),
          });
          cur = b.out[i]!;
          break;
        }
        case "linear": {
          const fin = size(s.in),
            fout = s.out[0];
          gpu.dispatch({
            pipeline: "linear",
            bindings: [
              gpu.uniform(key("linear"), [
                u(n),
                u(fin),
                u(fout),
                u(OFFSET.get(`${s.spec.name}.weight`)!),
                u(OFFSET.get(`${s.spec.name}.bias`)!),
                u(0),
                u(0),
                u(0),
              ]),
              cur,
              this.params,
              b.out[i]!,
            ],
            workgroups: grid1d(n * fout),
          });
          cur = b.out[i]!;
          break;
        }
        case "logsoftmax":
          gpu.dispatch({
            pipeline: "logSoftmax",
            bindings: [gpu.uniform(key("logsoftmax"), [u(n), u(s.in[0]), u(0), u(0)]), cur, b.out[i]!],
            workgroups: grid1d(n),
          });
          cur = b.out[i]!;
          break;
      }
      if (s.record && options.record === true) records.push({ name: s.record, buffer: cur, elements: n * size(s.out) });
    });
    const classes = this.stages.at(-1)!.out[0];
    const [lp, ...blockData] = await gpu.read([{ buffer: cur, elements: n * classes }, ...records]);
    if (train) {
      this.numBatchesTracked.forEach((v, k) => {
        this.numBatchesTracked[k] = v + 1;
      });
      this.pending = { b, inputs, dropout };
    }
    const logProbs = new Float32Array(lp!);
    if (options.record !== true) return { logProbs };
    const blocks: Partial<Record<BlockName, Float32Array>> = {};
    records.forEach((r, k) => {
      blocks[r.name] = new Float32Array(blockData[k]!);
    });
    return { logProbs, blocks };
  }

  /**
   * The dropout kernel's uniform block for one forward (and its backward, which recomputes the same mask from the
   * forward's resolved dropout): written per call, so the rate follows the forward's `rates` (a recipe may set them).
   */
  private dropoutUniform(
    total: number,
    spec: Extract<LayerSpec, { type: "dropout" }>,
    d: ForwardDropout,
  ): UniformValue[] {
    if (!Number.isInteger(d.seed) || !Number.isInteger(d.step) || d.step < 0)
      throw new Error(`${this.label} CNN: dropout seed and step must be integers (step ≥ 0), got ${d.seed}, ${d.step}`);
    const p = d.rates[spec.index]!;
    return [
      u(total),
      u(d.seed >>> 0),
      u(spec.index),
      u(d.step >>> 0),
      u(Math.floor(p * 4294967296)),
      u(0),
      u(0),
      f(1 / (1 - p)),
    ];
  }

  async backward(labels: ArrayLike<number>): Promise<{ loss: number }> {
    this.live();
    const st = this.pending;
    if (!st) throw new Error(`${this.label} CNN: backward() needs a train-mode forward() just before it`);
    const { b, inputs } = st;
    const n = b.n;
    const last = this.stages.length - 1;
    const classes = this.stages[last]!.out[0];
    validateLabels(labels, n, classes, `${this.label} CNN`);
    const gpu = this.gpu;
    gpu.write(b.labels, Uint32Array.from(labels));
    gpu.dispatch({
      pipeline: "nllBackward",
      bindings: [
        gpu.uniform(this.key("nll"), [u(n), u(classes), u(0), u(0)]),
        b.out[last]!,
        b.labels,
        b.dLogits,
        this.loss,
      ],
      workgroups: [1],
    });
    let g = b.dLogits;
    const other = (x: GPUBuffer) => (x === b.gA ? b.gB : b.gA);
    for (let i = last - 1; i >= 0; i--) {
      const s = this.stages[i]!;
      const key = (what: string) => this.key(`${i}:back:${what}`);
      switch (s.kind) {
        case "logsoftmax":
          throw new Error(`${this.label} CNN: log-softmax before the last layer`);
        case "linear": {
          const fin = size(s.in),
            fout = s.out[0];
          const w = OFFSET.get(`${s.spec.name}.weight`)!,
            bias = OFFSET.get(`${s.spec.name}.bias`)!;
          gpu.dispatch({
            pipeline: "linearBackwardParams",
            bindings: [
              gpu.uniform(key("params"), [u(n), u(fin), u(fout), u(w), u(bias), u(0), u(0), u(0)]),
              g,
              inputs[i]!,
              this.grads,
            ],
            workgroups: grid1d(fout * fin + fout),
          });
          if (i > 0) {
            gpu.dispatch({
              pipeline: "linearBackwardInput",
              bindings: [gpu.uniform(key("input"), [u(n), u(fin), u(fout), u(w)]), g, this.params, b.dFeatures],
              workgroups: grid1d(n * fin),
            });
            g = b.dFeatures;
          }
          break;
        }
        case "gap": {
          const [c, h, w] = s.in;
          const dst = b.gA;
          gpu.dispatch({
            pipeline: "gapBackward",
            bindings: [gpu.uniform(key("gap"), [u(n * c * h * w), u(h * w), u(0), u(0)]), g, dst],
            workgroups: grid1d(n * c * h * w),
          });
          g = dst;
          break;
        }
        case "dropout": {
          if (!st.dropout) break;
          const total = n * size(s.in);
          if (g !== b.gA && g !== b.gB)
            throw new Error(`${this.label} CNN: dropout backward needs its gradient in a scratch buffer`);
          gpu.dispatch({
            pipeline: "dropoutInPlace",
            bindings: [gpu.uniform(key("dropout"), this.dropoutUniform(total, s.spec, st.dropout)), g],
            workgroups: grid1d(total),
          });
          break;
        }
        case "pool": {
          const [c, ih, iw] = s.in,
            [, oh, ow] = s.out;
          const total = n * c * oh * ow;
          const dst = other(g);
          gpu.dispatch({
            pipeline: "maxpoolBackward",
            bindings: [
              gpu.uniform(key("pool"), [u(total), u(oh), u(ow), u(ih), u(iw), u(s.spec.size), u(0), u(0)]),
              g,
              b.arg[i]!,
              dst,
            ],
            workgroups: grid1d(total),
          });
          g = dst;
          break;
        }
        case "block": {
          const [cin, h, w] = s.in;
          const c = s.out[0],
            hw = h * w,
            slot = s.bnIndex * STAT_SLOT;
          const gamma = OFFSET.get(`${s.bn.name}.weight`)!,
            beta = OFFSET.get(`${s.bn.name}.bias`)!;
          const convW = OFFSET.get(`${s.conv.name}.weight`)!,
            convB = OFFSET.get(`${s.conv.name}.bias`)!;
          const y = b.out[i]!,
            z = b.z[i]!;
          if (g !== b.gA && g !== b.gB)
            throw new Error(`${this.label} CNN: block backward needs its gradient in a scratch buffer`);
          gpu.dispatch({
            pipeline: "bnBackwardReduce",
            bindings: [
              gpu.uniform(key("bnReduce"), [
                u(n),
                u(c),
                u(hw),
                u(slot),
                u(gamma),
                u(gamma),
                u(beta),
                u(convB),
                u(s.relu ? 1 : 0),
                u(1),
                u(0),
                u(0),
              ]),
              g,
              y,
              z,
              this.stats,
              this.params,
              this.grads,
            ],
            workgroups: [c],
          });
          gpu.dispatch({
            pipeline: "bnBackwardDx",
            bindings: [
              gpu.uniform(key("bnDx"), [
                u(n * c * hw),
                u(c),
                u(hw),
                u(slot),
                u(gamma),
                u(gamma),
                u(beta),
                u(s.relu ? 1 : 0),
                u(n * hw),
                u(0),
                u(0),
                u(0),
              ]),
              g,
              y,
              z,
              this.stats,
              this.params,
              this.grads,
            ],
            workgroups: grid1d(n * c * hw),
          });
          const weights = c * cin * 9;
          gpu.dispatch({
            pipeline: "conv3x3FilterGradPartial",
            bindings: [gpu.uniform(key("filterGrad"), [u(n), u(cin), u(h), u(w)]), inputs[i]!, g, b.partial],
            workgroups: grid1d(n * c * cin),
          });
          gpu.dispatch({
            pipeline: "conv3x3FilterGradSum",
            bindings: [gpu.uniform(key("filterGradSum"), [u(weights), u(n), u(convW), u(0)]), b.partial, this.grads],
            workgroups: grid1d(weights),
          });
          if (i > 0) {
            if (cin !== KERNEL_CHANNELS)
              throw new Error(
                `${this.label} CNN: ${s.conv.name}: the input-gradient kernel produces ${KERNEL_CHANNELS} channels, not ${cin}`,
              );
            const tilesX = Math.ceil(w / TILE),
              tilesY = Math.ceil(h / TILE);
            const dst = other(g);
            gpu.dispatch({
              pipeline: "conv3x3InputGrad",
              bindings: [
                gpu.uniform(key("inputGrad"), [
                  u(n),
                  u(c),
                  u(h),
                  u(w),
                  u(tilesX),
                  u(convW),
                  u(0),
                  u(0),
                  u(cin),
                  u(0),
                  u(0),
                  u(0),
                ]),
                g,
                this.params,
                dst,
              ],
              workgroups: [tilesX * tilesY, n],
            });
            g = dst;
          }
          break;
        }
      }
    }
    const [loss] = await gpu.read([{ buffer: this.loss, elements: 1 }]);
    this.pending = null;
    this.haveGrads = true;
    return { loss: new Float32Array(loss!)[0]! };
  }

  async gradients(): Promise<CnnTensors> {
    this.live();
    if (!this.haveGrads) throw new Error(`${this.label} CNN: gradients() before backward()`);
    const [data] = await this.gpu.read([{ buffer: this.grads, elements: PARAM_TOTAL }]);
    return unflatten(new Float32Array(data!));
  }

  /** One SGD update in a shader, recorded into the pending encoder: it runs with the next call's work. */
  async step(sgd: SgdStep): Promise<void> {
    this.live();
    if (!this.haveGrads) throw new Error(`${this.label} CNN: step() before backward()`);
    for (const [k, v] of Object.entries(sgd))
      if (!Number.isFinite(v)) throw new Error(`${this.label} CNN: SGD ${k} must be a finite number, got ${v}`);
    this.gpu.dispatch({
      pipeline: "sgd",
      bindings: [
        this.gpu.uniform(this.key("sgd"), [
          u(PARAM_TOTAL),
          u(this.haveMomentum ? 0 : 1),
          f(sgd.lr),
          f(sgd.momentum),
          f(sgd.weightDecay),
          u(0),
          u(0),
          u(0),
        ]),
        this.params,
        this.grads,
        this.momentum,
      ],
      workgroups: grid1d(PARAM_TOTAL),
    });
    this.haveMomentum = true;
  }

  async parameters(): Promise<CnnTensors> {
    this.live();
    const [data] = await this.gpu.read([{ buffer: this.params, elements: PARAM_TOTAL }]);
    return unflatten(new Float32Array(data!));
  }

  async buffers(): Promise<CnnTensors> {
    this.live();
    const [data] = await this.gpu.read([{ buffer: this.running, elements: BN_LAYERS.length * STAT_SLOT }]);
    const running = new Float32Array(data!);
    const out: CnnTensors = {};
    for (const b of CNN_BUFFERS) {
      const k = BN_LAYERS.findIndex((l) => l.name === b.layer);
      const c = BN_LAYERS[k]!.channels;
      if (b.role === "running_mean") out[b.name] = running.slice(k * STAT_SLOT, k * STAT_SLOT + c);
      else if (b.role === "running_var") out[b.name] = running.slice(k * STAT_SLOT + c, k * STAT_SLOT + 2 * c);
      else out[b.name] = Float32Array.of(this.numBatchesTracked[k]!);
    }
    return out;
  }

  /** The SGD momentum buffers (capability cnn.optimizer-state), PyTorch layouts like parameters(); {} before the first step. */
  async optimizerState(): Promise<CnnTensors> {
    this.live();
    if (!this.haveMomentum) return {};
    const [data] = await this.gpu.read([{ buffer: this.momentum, elements: PARAM_TOTAL }]);
    return unflatten(new Float32Array(data!));
  }

  async setOptimizerState(state: CnnTensors): Promise<void> {
    this.live();
    // Validated whole before anything changes, so a bad state leaves the model as it was.
    if (validateOptimizerState(state, `${this.label} CNN`) === "empty") {
      this.haveMomentum = false; // the next step sets buf = g, overwriting whatever the buffer holds
      return;
    }
    const flat = new Float32Array(PARAM_TOTAL);
    for (const p of CNN_PARAMS) flat.set(state[p.name]!, OFFSET.get(p.name)!);
    await this.gpu.flush(); // a pending SGD update must read the old momentum, not this one
    this.gpu.write(this.momentum, flat);
    this.haveMomentum = true;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.pending = null;
    await this.gpu.flush().catch(() => undefined); // pending SGD work must not run on destroyed buffers
    for (const b of this.batches.values()) this.gpu.releaseAll(b.all);
    this.batches.clear();
    this.gpu.releaseAll([this.params, this.grads, this.momentum, this.running, this.stats, this.loss]);
  }
}

function unflatten(flat: Float32Array): CnnTensors {
  return Object.fromEntries(
    CNN_PARAMS.map((p) => {
      const o = OFFSET.get(p.name)!;
      return [p.name, flat.slice(o, o + p.size)];
    }),
  );
}

export function createCnnOps(gpu: Gpu, label: string): CnnOps {
  return {
    async create(init) {
      return new WebGpuCnnModel(gpu, init, label);
    },
  };
}
