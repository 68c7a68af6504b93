import {
  CNN_BUFFERS, CNN_LAYERS, CNN_PARAMS, INPUT_SHAPE, sgdUpdate,
  type BlockName, type CnnForwardOptions, type CnnForwardResult, type CnnModel, type CnnTensors, type LayerSpec,
  type SgdStep, type Shape, type SummaryRow,
} from "@nnspec/spec";
import type { Arr, ArrayFactory } from "./arrays.ts";
import type { ConvPool } from "./conv-pool.ts";
import {
  BatchNorm2d, Conv2d, Dropout, GlobalAvgPool, Linear, LogSoftmax, MaxPool2d, Relu,
  type ForwardContext, type Layer, type ParamSlot,
} from "./layers.ts";

interface Built {
  readonly layer: Layer;
  /** Block name this layer's output is reported under when recording. */
  readonly records: BlockName | null;
}

/** Layer objects from the architecture data, each taking the previous one's output shape. */
function buildLayers(f: ArrayFactory, pool: ConvPool | null): Built[] {
  let shape: Shape = [...INPUT_SHAPE];
  let prev: LayerSpec | null = null;
  let lastBn = "";
  const built: Built[] = [];
  for (const spec of CNN_LAYERS) {
    let layer: Layer;
    let records: BlockName | null = null;
    switch (spec.type) {
      case "conv2d":
        if (shape[0] !== spec.inChannels) throw new Error(`${spec.name}: input has ${shape[0]} channels, expected ${spec.inChannels}`);
        layer = new Conv2d(f, spec.name, shape, spec.outChannels, pool);
        break;
      case "batchnorm2d":
        layer = new BatchNorm2d(f, spec.name, shape, spec.eps, spec.momentum);
        lastBn = spec.name;
        break;
      case "relu":
        layer = new Relu(f, shape);
        // A conv block is reported post-ReLU: "bn3" → "block3".
        records = (prev?.type === "batchnorm2d" ? lastBn.replace(/^bn/, "block") : null) as BlockName | null;
        break;
      case "maxpool2d":
        layer = new MaxPool2d(f, spec.name, shape);
        records = spec.name as BlockName;
        break;
      case "dropout":
        layer = new Dropout(f, spec.name, shape, spec.p, spec.index);
        // The pool outputs are reported after their dropout (identity when dropout is off).
        if (prev?.type === "maxpool2d") records = prev.name as BlockName;
        break;
      case "gap":
        layer = new GlobalAvgPool(f, shape);
        records = "gap";
        break;
      case "linear":
        layer = new Linear(f, spec.name, shape, spec.inFeatures, spec.outFeatures);
        records = "logits";
        break;
      case "logsoftmax":
        layer = new LogSoftmax(f, shape);
        records = "logProbs";
        break;
    }
    // A dropout right after a pool takes over the pool's record.
    if (spec.type === "dropout" && records) {
      const last = built[built.length - 1]!;
      built[built.length - 1] = { layer: last.layer, records: null };
    }
    built.push({ layer, records });
    shape = layer.outShape;
    prev = spec;
  }
  return built;
}

export class ReferenceCnnModel implements CnnModel {
  private readonly built: Built[];
  private readonly slots: Map<string, ParamSlot>;
  private readonly bns: Map<string, BatchNorm2d>;
  private readonly momentum = new Map<string, Arr>();
  private trainState: { n: number; logProbs: Arr } | null = null;
  private haveGradients = false;
  private disposed = false;

  private input: Arr | null = null;

  /** `pool`: a conv worker this model owns (closed by dispose), or null for single-threaded. */
  constructor(private readonly f: ArrayFactory, init: { parameters: CnnTensors; buffers?: CnnTensors }, private readonly pool: ConvPool | null) {
    this.built = buildLayers(f, pool);
    this.slots = new Map(this.built.flatMap((b) => b.layer.params.map((p) => [p.name, p] as const)));
    this.bns = new Map(this.built.flatMap((b) => (b.layer instanceof BatchNorm2d ? [[b.layer.name, b.layer] as const] : [])));
    for (const spec of CNN_PARAMS) {
      const slot = this.slots.get(spec.name);
      const src = init.parameters[spec.name];
      if (!slot) throw new Error(`reference CNN: the built model has no parameter "${spec.name}"`);
      if (!src) throw new Error(`reference CNN: parameters.${spec.name} is missing`);
      if (src.length !== slot.data.length) throw new Error(`reference CNN: parameters.${spec.name} has ${src.length} values, expected ${slot.data.length}`);
      slot.data.set(src);
    }
    if (init.buffers) {
      for (const spec of CNN_BUFFERS) {
        const src = init.buffers[spec.name];
        if (!src) throw new Error(`reference CNN: buffers.${spec.name} is missing`);
        if (src.length !== spec.size) throw new Error(`reference CNN: buffers.${spec.name} has ${src.length} values, expected ${spec.size}`);
        const bn = this.bns.get(spec.layer)!;
        if (spec.role === "running_mean") bn.runningMean.set(src);
        else if (spec.role === "running_var") bn.runningVar.set(src);
        else bn.numBatchesTracked = src[0]!;
      }
    }
  }

  private live(): void {
    if (this.disposed) throw new Error("reference CNN: model used after dispose()");
  }

  async summary(): Promise<SummaryRow[]> {
    this.live();
    const rows: SummaryRow[] = [];
    for (const { layer } of this.built) {
      if (!layer.moduleType) continue;
      const params = layer.params.reduce((a, p) => a + p.data.length, 0);
      rows.push({ layer: `${layer.moduleType}-${rows.length + 1}`, outputShape: [...layer.outShape], params });
    }
    return rows;
  }

  async forward(x: ArrayLike<number>, n: number, options: CnnForwardOptions): Promise<CnnForwardResult> {
    this.live();
    const perSample = INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2];
    if (!Number.isInteger(n) || n < 1) throw new Error(`reference CNN: batch size must be a positive integer, got ${n}`);
    if (x.length !== n * perSample) throw new Error(`reference CNN: input has ${x.length} values, expected ${n}×${perSample}`);
    const train = options.mode === "train";
    const ctx: ForwardContext = { train, dropout: train && options.dropout ? options.dropout : null };
    const blocks: Partial<Record<BlockName, Arr>> = {};
    if (!this.input || this.input.length !== x.length) this.input = this.f.allocShared(x.length);
    this.input.set(x);
    let a: Arr = this.input;
    for (const { layer, records } of this.built) {
      a = await layer.forward(a, n, ctx);
      if (options.record && records) blocks[records] = a.slice();
    }
    // Eval passes reuse the same workspaces, so they invalidate what a backward would need.
    this.trainState = train ? { n, logProbs: a } : null;
    return options.record ? { logProbs: a.slice(), blocks } : { logProbs: a.slice() };
  }

  async backward(labels: ArrayLike<number>): Promise<{ loss: number }> {
    this.live();
    const st = this.trainState;
    if (!st) throw new Error("reference CNN: backward() needs a train-mode forward() just before it");
    const { n, logProbs } = st;
    const C = logProbs.length / n;
    if (labels.length !== n) throw new Error(`reference CNN: ${labels.length} labels for a batch of ${n}`);
    const dy = this.f.alloc(logProbs.length);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const y = labels[i]!;
      if (!Number.isInteger(y) || y < 0 || y >= C) throw new Error(`reference CNN: labels[${i}] = ${y} is not a class in 0..${C - 1}`);
      loss -= logProbs[i * C + y]!;
      dy[i * C + y] = -1 / n;
    }
    let g: Arr | null = dy;
    for (let l = this.built.length - 1; l >= 0; l--) {
      g = await this.built[l]!.layer.backward(g!, n, l > 0);
    }
    this.haveGradients = true;
    return { loss: loss / n };
  }

  async gradients(): Promise<CnnTensors> {
    this.live();
    if (!this.haveGradients) throw new Error("reference CNN: gradients() before backward()");
    return Object.fromEntries(CNN_PARAMS.map((p) => [p.name, this.f.from(this.slots.get(p.name)!.grad)]));
  }

  async step(sgd: SgdStep): Promise<void> {
    this.live();
    if (!this.haveGradients) throw new Error("reference CNN: step() before backward()");
    for (const p of CNN_PARAMS) {
      const slot = this.slots.get(p.name)!;
      let buf = this.momentum.get(p.name);
      const first = !buf;
      if (!buf) { buf = this.f.alloc(slot.data.length); this.momentum.set(p.name, buf); }
      sgdUpdate(slot.data, slot.grad, buf, first, sgd);
    }
  }

  async parameters(): Promise<CnnTensors> {
    this.live();
    return Object.fromEntries(CNN_PARAMS.map((p) => [p.name, this.slots.get(p.name)!.data.slice()]));
  }

  async buffers(): Promise<CnnTensors> {
    this.live();
    return Object.fromEntries(CNN_BUFFERS.map((b) => {
      const bn = this.bns.get(b.layer)!;
      if (b.role === "running_mean") return [b.name, bn.runningMean.slice()];
      if (b.role === "running_var") return [b.name, bn.runningVar.slice()];
      const t = this.f.alloc(1);
      t[0] = bn.numBatchesTracked;
      return [b.name, t];
    }));
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.trainState = null;
    await this.pool?.close();
  }
}
