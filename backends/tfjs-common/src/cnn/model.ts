import * as tf from "@tensorflow/tfjs";
import {
  CNN_BUFFERS,
  CNN_LAYERS,
  CNN_PARAMS,
  INPUT_SHAPE,
  dropoutRatesProblems,
  validateLabels,
  validateOptimizerState,
  type BlockName,
  type CnnForwardOptions,
  type CnnForwardResult,
  type CnnModel,
  type CnnTensors,
  type FloatArray,
  type ParamSpec,
  type SgdStep,
  type SummaryRow,
} from "@nnspec/spec";
import { buildLayers, type BnState, type ForwardContext, type Layer, type Saved } from "./layers.ts";
import { channelSum, channelSumByPool, channelSumByReduce, filterFromTorch, filterToTorchFlat } from "./ops.ts";

const TOTAL = CNN_PARAMS.reduce((a, p) => a + p.size, 0);
const SIZES = CNN_PARAMS.map((p) => p.size);
const OFFSETS = CNN_PARAMS.map((_, i) => SIZES.slice(0, i).reduce((a, b) => a + b, 0));
const PER_SAMPLE = INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2];

const isConvWeight = (p: ParamSpec) => p.role === "weight" && p.shape.length === 4;

/** PyTorch-layout flat slice → the tensor a layer uses (conv filters go to tfjs's [kh, kw, in, out]). */
function toTfLayout(p: ParamSpec, flat: tf.Tensor): tf.Tensor {
  if (isConvWeight(p)) return filterFromTorch(flat, p.shape[0]!, p.shape[1]!, p.shape[2]!);
  return tf.reshape(flat, [...p.shape]);
}
function toTorchFlat(p: ParamSpec, t: tf.Tensor): tf.Tensor1D {
  return isConvWeight(p) ? filterToTorchFlat(t as tf.Tensor4D) : tf.reshape(t, [-1]);
}

function checked(label: string, group: string, name: string, src: FloatArray | undefined, size: number): FloatArray {
  if (!src) throw new Error(`${label} CNN: ${group}.${name} is missing`);
  if (src.length !== size) throw new Error(`${label} CNN: ${group}.${name} has ${src.length} values, expected ${size}`);
  return src;
}

/** What differs between the tfjs backends that share this model. */
export interface TfjsCnnOptions {
  /** Backend name for error messages, e.g. "tfjs-webgl". */
  readonly label: string;
  /**
   * How per-channel sums (BatchNorm statistics, bias gradients) are computed: "gemm" (xᵀ·1 against a cached
   * column of ones), "pool" (average pooling then a small GEMM; fastest on wasm, whose Sum kernel transposes
   * first) or "reduce" (the Sum kernel; more accurate where the GEMM accumulates sequentially, as WebGL's shaders
   * do). See ops.ts.
   */
  readonly channelSum: "gemm" | "pool" | "reduce";
  /** BatchNorm affine + ReLU as one fused GEMM (bit-identical, fewer kernels; see layers.ts). Default false. */
  readonly affineByGemm?: boolean;
}

/**
 * The CNN as tfjs tensors on whichever tfjs backend is active. All parameters live in one flat float32 vector in PyTorch
 * state_dict order, so the SGD update is a handful of kernels over the whole model and parameters()/gradients()
 * are one read each; layers see tfjs-layout views derived from it once per update.
 */
export class TfjsCnnModel implements CnnModel {
  private readonly layers: Layer[];
  private readonly bn = new Map<string, BnState>();
  private params: tf.Tensor1D;
  private momentumBuf: tf.Tensor1D | null = null;
  private grads: tf.Tensor1D | null = null;
  private views: Map<string, tf.Tensor> | null = null;
  private readonly onesCache = new Map<number, tf.Tensor2D>();
  private pending: { n: number; logProbs: tf.Tensor2D; saved: Saved[]; ctx: ForwardContext } | null = null;
  private disposed = false;
  private readonly label: string;
  private readonly channelSum: TfjsCnnOptions["channelSum"];
  private readonly affineByGemm: boolean;

  constructor(init: { parameters: CnnTensors; buffers?: CnnTensors }, options: TfjsCnnOptions) {
    this.label = options.label;
    this.channelSum = options.channelSum;
    this.affineByGemm = options.affineByGemm === true;
    const flat = new Float32Array(TOTAL);
    for (const [i, p] of CNN_PARAMS.entries()) {
      flat.set(checked(this.label, "parameters", p.name, init.parameters[p.name], p.size), OFFSETS[i]);
    }
    for (const l of CNN_LAYERS) {
      if (l.type !== "batchnorm2d") continue;
      const buf = (role: string, fresh: number) => {
        const spec = CNN_BUFFERS.find((b) => b.layer === l.name && b.role === role)!;
        return init.buffers
          ? checked(this.label, "buffers", spec.name, init.buffers[spec.name], spec.size)
          : new Float32Array(spec.size).fill(fresh);
      };
      this.bn.set(l.name, {
        runningMean: tf.tensor1d(Float32Array.from(buf("running_mean", 0))),
        runningVar: tf.tensor1d(Float32Array.from(buf("running_var", 1))),
        numBatchesTracked: buf("num_batches_tracked", 0)[0]!,
      });
    }
    this.params = tf.tensor1d(flat);
    this.layers = buildLayers(CNN_LAYERS, INPUT_SHAPE, (name) => this.bn.get(name)!, this.label);
  }

  private live(): void {
    if (this.disposed) throw new Error(`${this.label} CNN: model used after dispose()`);
  }

  private ones(m: number): tf.Tensor2D {
    const cached = this.onesCache.get(m);
    if (cached) return cached;
    const t = tf.keep(tf.ones([m, 1]) as tf.Tensor2D);
    this.onesCache.set(m, t);
    return t;
  }

  private paramViews(): Map<string, tf.Tensor> {
    if (!this.views) {
      const p = this.params;
      this.views = new Map(
        tf.tidy(() => {
          const parts = tf.split(p, SIZES);
          return CNN_PARAMS.map((spec, i) => [spec.name, tf.keep(toTfLayout(spec, parts[i]!))] as const);
        }),
      );
    }
    return this.views;
  }

  private context(train: boolean, dropout: CnnForwardOptions["dropout"]): ForwardContext {
    const views = this.paramViews();
    return {
      train,
      dropout: train && dropout ? dropout : null,
      affineByGemm: this.affineByGemm,
      channelSum: (x2d) =>
        this.channelSum === "gemm"
          ? channelSum(x2d, this.ones(x2d.shape[0]))
          : this.channelSum === "pool"
            ? channelSumByPool(x2d)
            : channelSumByReduce(x2d),
      param: (name) => {
        const t = views.get(name);
        if (!t) throw new Error(`${this.label} CNN: no parameter ${name}`);
        return t;
      },
    };
  }

  private releasePending(): void {
    if (!this.pending) return;
    tf.dispose([this.pending.logProbs, ...this.pending.saved.flatMap((s) => Object.values(s))]);
    this.pending = null;
  }

  async summary(): Promise<SummaryRow[]> {
    this.live();
    const views = this.paramViews();
    const rows: SummaryRow[] = [];
    for (const layer of this.layers) {
      if (!layer.moduleType) continue;
      const name = (layer.spec as { name: string }).name;
      const params = CNN_PARAMS.filter((p) => p.layer === name).reduce((a, p) => a + views.get(p.name)!.size, 0);
      rows.push({ layer: `${layer.moduleType}-${rows.length + 1}`, outputShape: [...layer.outShape], params });
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
    this.releasePending();
    const train = options.mode === "train";
    const ctx = this.context(train, options.dropout);
    const record = options.record === true;
    const [c, h, w] = INPUT_SHAPE;
    const out = tf.tidy(() => {
      const nchw = tf.tensor4d(x instanceof Float32Array ? x : Float32Array.from(x), [n, c, h, w]);
      // NCHW → NHWC; with one channel the memory order is already NHWC, so a reshape (no copy) does.
      let a: tf.Tensor = c === 1 ? tf.reshape(nchw, [n, h, w, c]) : tf.transpose(nchw, [0, 2, 3, 1]);
      const saved: Saved[] = [];
      const blocks: Array<[BlockName, tf.Tensor]> = [];
      for (const layer of this.layers) {
        const r = layer.forward(a, ctx);
        a = r.y;
        saved.push(r.saved);
        if (record && layer.records)
          blocks.push([layer.records, a.rank === 4 ? tf.transpose(a, [0, 3, 1, 2]) : tf.clone(a)]);
      }
      return { logProbs: a as tf.Tensor2D, saved, blocks };
    });
    if (train) {
      // Swap in the new running statistics; the old ones are no longer referenced.
      this.layers.forEach((layer, i) => {
        const s = out.saved[i]!;
        if (layer.spec.type !== "batchnorm2d" || !s.runningMean) return;
        const st = this.bn.get(layer.spec.name)!;
        tf.dispose([st.runningMean, st.runningVar]);
        st.runningMean = s.runningMean as tf.Tensor1D;
        st.runningVar = s.runningVar as tf.Tensor1D;
        st.numBatchesTracked += 1;
        delete s.runningMean;
        delete s.runningVar;
      });
    }
    const logProbs = (await out.logProbs.data()) as Float32Array;
    const blocks: Partial<Record<BlockName, Float32Array>> = {};
    for (const [name, t] of out.blocks) blocks[name] = (await t.data()) as Float32Array;
    tf.dispose(out.blocks.map(([, t]) => t));
    if (train) this.pending = { n, logProbs: out.logProbs, saved: out.saved, ctx };
    else tf.dispose([out.logProbs, ...out.saved.flatMap((s) => Object.values(s))]);
    return record ? { logProbs, blocks } : { logProbs };
  }

  async backward(labels: ArrayLike<number>): Promise<{ loss: number }> {
    this.live();
    const st = this.pending;
    if (!st) throw new Error(`${this.label} CNN: backward() needs a train-mode forward() just before it`);
    const { n, logProbs } = st;
    const classes = logProbs.shape[1]!;
    validateLabels(labels, n, classes, `${this.label} CNN`);
    // ∂(mean NLL)/∂logProbs = −onehot/n, built in JS (n × classes floats).
    const dLogProbs = new Float32Array(n * classes);
    for (let i = 0; i < n; i++) dLogProbs[i * classes + labels[i]!] = -1 / n;
    const lp = (await logProbs.data()) as Float32Array;
    let loss = 0;
    for (let i = 0; i < n; i++) loss -= lp[i * classes + labels[i]!]!;
    const grads = tf.tidy(() => {
      let g: tf.Tensor | null = tf.tensor2d(dLogProbs, [n, classes]);
      let gSum: tf.Tensor | undefined;
      const byName: Record<string, tf.Tensor> = {};
      for (let i = this.layers.length - 1; i >= 0; i--) {
        const r = this.layers[i]!.backward(g!, st.saved[i]!, st.ctx, i > 0, gSum);
        Object.assign(byName, r.grads);
        g = r.dx;
        gSum = r.dxChannelSum;
      }
      return tf.concat(
        CNN_PARAMS.map((p) => {
          const t = byName[p.name];
          if (!t) throw new Error(`${this.label} CNN: backward produced no gradient for ${p.name}`);
          return toTorchFlat(p, t);
        }),
      ) as tf.Tensor1D;
    });
    this.releasePending();
    this.grads?.dispose();
    this.grads = grads;
    return { loss: loss / n };
  }

  async gradients(): Promise<CnnTensors> {
    this.live();
    if (!this.grads) throw new Error(`${this.label} CNN: gradients() before backward()`);
    return this.unflatten((await this.grads.data()) as Float32Array);
  }

  /** SGD with momentum and weight decay over the flat vector, as optim.ts `sgdUpdate` (first step: buf = g). */
  async step(sgd: SgdStep): Promise<void> {
    this.live();
    const grads = this.grads;
    if (!grads) throw new Error(`${this.label} CNN: step() before backward()`);
    const { params, momentumBuf } = this;
    const next = tf.tidy(() => {
      const g = sgd.weightDecay === 0 ? grads : tf.add(grads, tf.mul(params, sgd.weightDecay));
      const buf = momentumBuf ? tf.add(tf.mul(momentumBuf, sgd.momentum), g) : tf.clone(g);
      return { params: tf.sub(params, tf.mul(buf, sgd.lr)) as tf.Tensor1D, buf: buf as tf.Tensor1D };
    });
    tf.dispose([params, ...(momentumBuf ? [momentumBuf] : [])]);
    this.params = next.params;
    this.momentumBuf = next.buf;
    this.dropViews();
  }

  private dropViews(): void {
    if (this.views) tf.dispose([...this.views.values()]);
    this.views = null;
  }

  private unflatten(flat: Float32Array): CnnTensors {
    return Object.fromEntries(CNN_PARAMS.map((p, i) => [p.name, flat.slice(OFFSETS[i]!, OFFSETS[i]! + p.size)]));
  }

  async parameters(): Promise<CnnTensors> {
    this.live();
    return this.unflatten((await this.params.data()) as Float32Array);
  }

  async buffers(): Promise<CnnTensors> {
    this.live();
    const out: CnnTensors = {};
    for (const b of CNN_BUFFERS) {
      const st = this.bn.get(b.layer)!;
      if (b.role === "running_mean") out[b.name] = (await st.runningMean.data()) as Float32Array;
      else if (b.role === "running_var") out[b.name] = (await st.runningVar.data()) as Float32Array;
      else out[b.name] = Float32Array.of(st.numBatchesTracked);
    }
    return out;
  }

  /** Momentum buffers (capability cnn.optimizer-state), PyTorch layouts like parameters(); empty before the first step. */
  async optimizerState(): Promise<CnnTensors> {
    this.live();
    return this.momentumBuf ? this.unflatten((await this.momentumBuf.data()) as Float32Array) : {};
  }

  async setOptimizerState(state: CnnTensors): Promise<void> {
    this.live();
    // Validated whole before anything changes, so a bad state leaves the model as it was.
    const kind = validateOptimizerState(state, `${this.label} CNN`);
    let next: tf.Tensor1D | null = null;
    if (kind === "full") {
      const flat = new Float32Array(TOTAL);
      CNN_PARAMS.forEach((p, i) => {
        flat.set(state[p.name]!, OFFSETS[i]);
      });
      next = tf.tensor1d(flat);
    }
    this.momentumBuf?.dispose();
    this.momentumBuf = next;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.releasePending();
    this.dropViews();
    tf.dispose([
      this.params,
      ...(this.momentumBuf ? [this.momentumBuf] : []),
      ...(this.grads ? [this.grads] : []),
      ...this.onesCache.values(),
    ]);
    for (const st of this.bn.values()) tf.dispose([st.runningMean, st.runningVar]);
    this.onesCache.clear();
    this.grads = null;
    this.momentumBuf = null;
    this.disposed = true;
  }
}
