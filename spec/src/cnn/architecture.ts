/**
 * The 16-channel MNIST CNN as data. Shapes and parameter counts are derived from this list, never typed twice;
 * `summaryTable()` reproduces the torchsummary table the course publishes.
 */
export type LayerSpec =
  | {
      readonly type: "conv2d";
      readonly name: string;
      readonly inChannels: number;
      readonly outChannels: number;
      readonly kernel: 3;
      readonly padding: 1;
    }
  | {
      readonly type: "batchnorm2d";
      readonly name: string;
      readonly channels: number;
      readonly eps: number;
      readonly momentum: number;
    }
  | { readonly type: "relu" }
  /**
   * size×size windows, stride size, no padding. Backward: each window's gradient goes to one position, the FIRST
   * maximum in row-major window order (ties route to the first maximum, as PyTorch does).
   */
  | { readonly type: "maxpool2d"; readonly name: string; readonly size: 2 }
  | { readonly type: "dropout"; readonly name: string; readonly p: number; readonly index: number }
  | { readonly type: "gap" }
  | { readonly type: "linear"; readonly name: string; readonly inFeatures: number; readonly outFeatures: number }
  | { readonly type: "logsoftmax" };

export const INPUT_SHAPE = [1, 28, 28] as const;
export const NUM_CLASSES = 10;
export const CHANNELS = 16;
export const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;
export const NORMALIZE = { mean: 0.1307, std: 0.3081 } as const;
export const TRAIN_BATCH_SIZE = 128;

function convBlock(i: number, inCh: number): LayerSpec[] {
  return [
    { type: "conv2d", name: `conv${i}`, inChannels: inCh, outChannels: CHANNELS, kernel: 3, padding: 1 },
    { type: "batchnorm2d", name: `bn${i}`, channels: CHANNELS, eps: BN_EPS, momentum: BN_MOMENTUM },
    { type: "relu" },
  ];
}

/** Layer order of the forward pass. Names double as PyTorch state_dict prefixes. */
export const CNN_LAYERS: readonly LayerSpec[] = [
  ...convBlock(1, 1),
  ...convBlock(2, CHANNELS),
  ...convBlock(3, CHANNELS),
  { type: "maxpool2d", name: "pool1", size: 2 },
  { type: "dropout", name: "drop1", p: 0.2, index: 0 },
  ...convBlock(4, CHANNELS),
  ...convBlock(5, CHANNELS),
  ...convBlock(6, CHANNELS),
  { type: "maxpool2d", name: "pool2", size: 2 },
  { type: "dropout", name: "drop2", p: 0.2, index: 1 },
  ...convBlock(7, CHANNELS),
  ...convBlock(8, CHANNELS),
  ...convBlock(9, CHANNELS),
  { type: "dropout", name: "drop3", p: 0.15, index: 2 },
  { type: "gap" },
  { type: "linear", name: "fc", inFeatures: CHANNELS, outFeatures: NUM_CLASSES },
  { type: "logsoftmax" },
];

export const DROPOUT_LAYERS = CNN_LAYERS.filter(
  (l): l is Extract<LayerSpec, { type: "dropout" }> => l.type === "dropout",
);

/** The architecture's drop probabilities, in DROPOUT_LAYERS order: what a forward uses unless it is given rates. */
export const DEFAULT_DROPOUT_RATES: readonly number[] = DROPOUT_LAYERS.map((l) => l.p);

/**
 * Problems with per-forward dropout rates (a training recipe's setting, CnnForwardOptions.dropout.rates): one rate per
 * dropout layer, each in [0, 1). Empty when they are fine.
 */
export function dropoutRatesProblems(rates: readonly number[]): string[] {
  const problems: string[] = [];
  if (rates.length !== DROPOUT_LAYERS.length)
    problems.push(`dropout rates: expected ${DROPOUT_LAYERS.length} (one per dropout layer), got ${rates.length}`);
  rates.forEach((r, i) => {
    if (!(Number.isFinite(r) && r >= 0 && r < 1))
      problems.push(`dropout rate ${i} (${DROPOUT_LAYERS[i]?.name ?? "?"}): must be in [0, 1), got ${r}`);
  });
  return problems;
}

/**
 * The drop probability of dropout layer `index` in one train-mode forward: the forward's `rates` when it has them
 * (a recipe may set them; the layer graph and parameters do not change), else the architecture's p.
 * Rate 0 keeps every element with scale 1, so it equals dropout off.
 */
export function dropoutRate(dropout: { readonly rates?: readonly number[] } | undefined, index: number): number {
  const p = dropout?.rates?.[index] ?? DEFAULT_DROPOUT_RATES[index];
  if (p === undefined) throw new RangeError(`dropoutRate: no dropout layer ${index}`);
  return p;
}

export type Shape = readonly number[];

/** Output shape (without batch) after each layer, in CNN_LAYERS order. */
export function layerShapes(): Shape[] {
  let shape: number[] = [...INPUT_SHAPE];
  return CNN_LAYERS.map((l) => {
    if (l.type === "conv2d") shape = [l.outChannels, shape[1]!, shape[2]!];
    else if (l.type === "maxpool2d")
      shape = [shape[0]!, Math.floor(shape[1]! / l.size), Math.floor(shape[2]! / l.size)];
    else if (l.type === "gap") shape = [shape[0]!];
    else if (l.type === "linear") shape = [l.outFeatures];
    return [...shape];
  });
}

export interface ParamSpec {
  /** PyTorch state_dict key, e.g. "conv3.weight". */
  readonly name: string;
  readonly shape: Shape;
  readonly size: number;
  readonly layer: string;
  readonly role: "weight" | "bias";
}
export interface BufferSpec {
  readonly name: string;
  readonly shape: Shape;
  readonly size: number;
  readonly layer: string;
  readonly role: "running_mean" | "running_var" | "num_batches_tracked";
}

const prod = (s: Shape): number => s.reduce((a, b) => a * b, 1);

/** Trainable parameters in PyTorch `named_parameters()` order (conv weight [out,in,3,3], bias; bn weight, bias; fc weight [10,16], bias). */
export const CNN_PARAMS: readonly ParamSpec[] = CNN_LAYERS.flatMap((l): ParamSpec[] => {
  const p = (layer: string, role: "weight" | "bias", shape: number[]): ParamSpec => ({
    name: `${layer}.${role}`,
    shape,
    size: prod(shape),
    layer,
    role,
  });
  if (l.type === "conv2d")
    return [p(l.name, "weight", [l.outChannels, l.inChannels, l.kernel, l.kernel]), p(l.name, "bias", [l.outChannels])];
  if (l.type === "batchnorm2d") return [p(l.name, "weight", [l.channels]), p(l.name, "bias", [l.channels])];
  if (l.type === "linear")
    return [p(l.name, "weight", [l.outFeatures, l.inFeatures]), p(l.name, "bias", [l.outFeatures])];
  return [];
});

/** BatchNorm buffers in state_dict order. num_batches_tracked is a single count. */
export const CNN_BUFFERS: readonly BufferSpec[] = CNN_LAYERS.flatMap((l): BufferSpec[] =>
  l.type !== "batchnorm2d"
    ? []
    : [
        { name: `${l.name}.running_mean`, shape: [l.channels], size: l.channels, layer: l.name, role: "running_mean" },
        { name: `${l.name}.running_var`, shape: [l.channels], size: l.channels, layer: l.name, role: "running_var" },
        { name: `${l.name}.num_batches_tracked`, shape: [], size: 1, layer: l.name, role: "num_batches_tracked" },
      ],
);

export const CNN_PARAM_COUNT = CNN_PARAMS.reduce((a, p) => a + p.size, 0);

export interface SummaryRow {
  readonly layer: string; // e.g. "Conv2d-1"
  readonly outputShape: Shape; // without batch
  readonly params: number;
}

const TABLE_TYPE: Partial<Record<LayerSpec["type"], string>> = {
  conv2d: "Conv2d",
  batchnorm2d: "BatchNorm2d",
  maxpool2d: "MaxPool2d",
  dropout: "Dropout",
  linear: "Linear",
};

/** The torchsummary-style table (modules only: ReLU, GAP and log-softmax are functional and not listed). */
export function summaryTable(): SummaryRow[] {
  const shapes = layerShapes();
  const rows: SummaryRow[] = [];
  CNN_LAYERS.forEach((l, i) => {
    const type = TABLE_TYPE[l.type];
    if (!type) return;
    const name = (l as { name: string }).name;
    const params = CNN_PARAMS.filter((p) => p.layer === name).reduce((a, p) => a + p.size, 0);
    rows.push({ layer: `${type}-${rows.length + 1}`, outputShape: shapes[i]!, params });
  });
  return rows;
}

export function formatSummary(rows: readonly SummaryRow[]): string {
  const fmt = (n: number) => n.toLocaleString("en-US");
  const lines = [
    `${"Layer (type)".padEnd(20)}${"Output Shape".padEnd(20)}Param #`,
    ...rows.map((r) => `${r.layer.padEnd(20)}${`[-1, ${r.outputShape.join(", ")}]`.padEnd(20)}${fmt(r.params)}`),
    `Total params: ${fmt(rows.reduce((a, r) => a + r.params, 0))}`,
  ];
  return lines.join("\n");
}

/**
 * Named block outputs a backend reports from a recorded forward pass (post-ReLU for conv blocks), in order.
 * Goldens store the same names, so a backend is checked block by block.
 */
export const BLOCK_OUTPUTS = [
  "block1",
  "block2",
  "block3",
  "pool1",
  "block4",
  "block5",
  "block6",
  "pool2",
  "block7",
  "block8",
  "block9",
  "gap",
  "logits",
  "logProbs",
] as const;
export type BlockName = (typeof BLOCK_OUTPUTS)[number];

/**
 * Which layer's output is recorded under which block name, index-aligned with `layers` (null: not recorded):
 *  - a conv block post-ReLU, on the ReLU that follows its BatchNorm ("bn3" → "block3");
 *  - a pool on the dropout right after it, if any (dropout is the identity when off, so the value is the pool's
 *    output in eval mode and what the next layer sees in train mode), else on the pool itself;
 *  - "gap", "logits" (the linear layer) and "logProbs" on their layers.
 * A backend that fuses consecutive layers into one (e.g. BatchNorm + ReLU) records what the last of them records.
 * Throws if a name it derives is not a BLOCK_OUTPUTS name.
 */
export function recordedBlocks(layers: readonly LayerSpec[] = CNN_LAYERS): (BlockName | null)[] {
  const blockName = (name: string, layer: string): BlockName => {
    if (!(BLOCK_OUTPUTS as readonly string[]).includes(name))
      throw new Error(
        `recordedBlocks: layer ${layer} would record "${name}", which is not a block output (${BLOCK_OUTPUTS.join(", ")})`,
      );
    return name as BlockName;
  };
  const out: (BlockName | null)[] = [];
  layers.forEach((l, i) => {
    const prev = layers[i - 1];
    let rec: BlockName | null = null;
    if (l.type === "relu" && prev?.type === "batchnorm2d")
      rec = blockName(prev.name.replace(/^bn/, "block"), prev.name);
    else if (l.type === "maxpool2d") rec = blockName(l.name, l.name);
    else if (l.type === "dropout" && prev?.type === "maxpool2d") {
      rec = out[i - 1]!;
      out[i - 1] = null;
    } else if (l.type === "gap") rec = "gap";
    else if (l.type === "linear") rec = "logits";
    else if (l.type === "logsoftmax") rec = "logProbs";
    out.push(rec);
  });
  return out;
}

/** recordedBlocks() of the CNN: CNN_BLOCK_RECORDS[i] is the block name layer CNN_LAYERS[i]'s output is recorded under. */
export const CNN_BLOCK_RECORDS: readonly (BlockName | null)[] = recordedBlocks(CNN_LAYERS);
