import { CNN_PARAMS, initBuffers, layerScale, toleranceFor, type BlockName, type Precision } from "@nnspec/spec";
import {
  meanNll,
  oracleBackward,
  oracleDecisions,
  oracleForward,
  withDecisions,
  type LoadedCnnFixture,
  type OracleForward,
  type Tensors64,
} from "@nnspec/fixtures/core";

/**
 * Discrete decisions at near-ties. A ReLU whose input is within rounding of 0, or a max-pool window whose two
 * largest values are within rounding of each other, may go the other way in a correct float32 forward than in the
 * float64 golden; every gradient upstream of it then differs by far more than rounding (one unit's whole
 * contribution). Like a kink in the finite differences, such a decision must not decide a pass or a fail.
 *
 * So when a gradient or step check fails, the judge reads the backend's OWN decisions from its recorded block
 * outputs (ReLU active where its output is > 0, pool routes by the first maximum of its own values) and compares
 * them with the golden's, computed by the independent float64 oracle (fixtures/src/cnn/oracle.ts). If they differ
 * only where the golden's margin is within the feature-map tolerance that the forward checks allow — the band in
 * which the backend's values were judged equal to the golden's — the golden is re-derived by the oracle under the
 * backend's decisions and the backend is judged against that, with the same tolerance. Any other difference, or
 * none, leaves the verdict against the golden standing. An exact tie keeps the contract's rule: the backend's route
 * is read from its own values, so a backend that ties them must route to the first maximum.
 */
export interface Reconciled {
  /** Step-1 gradients under the backend's decisions. */
  readonly gradients: Tensors64;
  readonly note: string;
}

export interface ReconciledSteps {
  /** The loss of the step-2 forward (it moves with step 1's gradients). */
  readonly loss2: number;
  readonly parameters: Tensors64;
  readonly buffers: Tensors64;
  readonly note: string;
}

type Blocks = Partial<Record<BlockName, ArrayLike<number>>>;
const RELU_BLOCKS = [
  "block1",
  "block2",
  "block3",
  "block4",
  "block5",
  "block6",
  "block7",
  "block8",
  "block9",
] as const satisfies readonly BlockName[];
const POOL_INPUTS = ["block3", "block6"] as const satisfies readonly BlockName[];
const POOL_SHAPES = [
  [28, 28],
  [14, 14],
] as const;

interface BackendDecisions {
  readonly reluActive: Uint8Array[];
  readonly poolArgmax: Int32Array[];
}

/** The backend's decisions, read from its recorded blocks; null when it did not record them. */
function decisionsFromBlocks(blocks: Blocks | undefined): BackendDecisions | null {
  if (!blocks || RELU_BLOCKS.some((b) => !blocks[b])) return null;
  const reluActive = RELU_BLOCKS.map((b) => Uint8Array.from(blocks[b]!, (v) => (v > 0 ? 1 : 0)));
  const poolArgmax = POOL_INPUTS.map((b, k) => {
    const x = blocks[b]!;
    const [H, W] = POOL_SHAPES[k]!;
    const out = new Int32Array(x.length / 4);
    let o = 0;
    for (let base = 0; base < x.length; base += H * W) {
      for (let y = 0; y < H; y += 2) {
        for (let xx = 0; xx < W; xx += 2) {
          let best = base + y * W + xx;
          for (const idx of [best + 1, best + W, best + W + 1]) if (x[idx]! > x[best]!) best = idx; // first maximum, as the contract
          out[o++] = best;
        }
      }
    }
    return out;
  });
  return { reluActive, poolArgmax };
}

/**
 * Compare decisions; null when they agree everywhere or differ somewhere beyond the tolerance band, else a note
 * naming each near-tie taken the other way.
 */
function nearTieDifferences(golden: OracleForward, mine: BackendDecisions, precision: Precision): string | null {
  const g = oracleDecisions(golden);
  const tol = toleranceFor(precision, "gradient");
  const band = (block: BlockName) => tol.atol + tol.rtol * layerScale([golden.blocks[block]]);
  const notes: string[] = [];
  for (const [k, z] of g.reluInputs.entries()) {
    const limit = band(RELU_BLOCKS[k]!);
    const active = mine.reluActive[k]!;
    for (let i = 0; i < z.length; i++) {
      if ((z[i]! > 0 ? 1 : 0) === active[i]) continue;
      if (!(Math.abs(z[i]!) <= limit)) return null;
      notes.push(`${RELU_BLOCKS[k]} unit ${i} (golden input ${z[i]!.toExponential(2)})`);
    }
  }
  for (const [k, route] of g.poolArgmax.entries()) {
    const x = g.poolInputs[k]!,
      limit = band(POOL_INPUTS[k]!);
    const other = mine.poolArgmax[k]!;
    for (let w = 0; w < route.length; w++) {
      if (route[w] === other[w]) continue;
      const margin = x[route[w]!]! - x[other[w]!]!;
      if (!(Math.abs(margin) <= limit)) return null;
      notes.push(`pool${k + 1} window ${w} (golden margin ${margin.toExponential(2)})`);
    }
  }
  if (notes.length === 0) return null;
  return `judged under its own decision at ${notes.length} near-tie(s) of the golden: ${notes.slice(0, 4).join(", ")}${notes.length > 4 ? ", …" : ""}`;
}

/** Step 1: the golden's gradients re-derived under the backend's decisions, when only near-ties differ. */
export function reconcileStep1(
  f: LoadedCnnFixture,
  precision: Precision,
  blocks: Blocks | undefined,
): Reconciled | null {
  const mine = decisionsFromBlocks(blocks);
  if (!mine) return null;
  const fwd = oracleForward(f.parameters, initBuffers(), f.input, f.manifest.batch, { mode: "train" });
  const note = nearTieDifferences(fwd, mine, precision);
  if (!note) return null;
  return { gradients: oracleBackward(f.parameters, withDecisions(fwd, mine), f.labels).gradients, note };
}

/**
 * Both steps: the golden's parameters and buffers after step 2 re-derived under the backend's decisions at step 1
 * and step 2 (recorded blocks of its two train forwards), when they differ from the golden's only at near-ties.
 */
export function reconcileSteps(
  f: LoadedCnnFixture,
  precision: Precision,
  blocks1: Blocks | undefined,
  blocks2: Blocks | undefined,
): ReconciledSteps | null {
  const mine1 = decisionsFromBlocks(blocks1),
    mine2 = decisionsFromBlocks(blocks2);
  if (!mine1 || !mine2) return null;
  const { lr, momentum: m, weightDecay: wd } = f.manifest.sgd;
  const n = f.manifest.batch;
  const buffers = initBuffers();
  const fwd1 = oracleForward(f.parameters, buffers, f.input, n, { mode: "train" });
  const diff1 = nearTieDifferences(fwd1, mine1, precision);
  const g1 = diff1 ? oracleBackward(f.parameters, withDecisions(fwd1, mine1), f.labels).gradients : f.gradients;
  const buf: Tensors64 = {},
    p1: Tensors64 = {},
    p2: Tensors64 = {};
  for (const p of CNN_PARAMS) {
    const p0 = f.parameters[p.name]!,
      g = g1[p.name]!;
    buf[p.name] = Float64Array.from(p0, (v, i) => g[i]! + wd * v);
    p1[p.name] = Float64Array.from(p0, (v, i) => v - lr * buf[p.name]![i]!);
  }
  const fwd2 = oracleForward(p1, buffers, f.input, n, { mode: "train" });
  const diff2 = nearTieDifferences(fwd2, mine2, precision);
  if (!diff1 && !diff2) return null;
  const g2 = oracleBackward(p1, diff2 ? withDecisions(fwd2, mine2) : fwd2, f.labels).gradients;
  for (const p of CNN_PARAMS) {
    const q = p1[p.name]!,
      b = buf[p.name]!,
      g = g2[p.name]!;
    p2[p.name] = Float64Array.from(q, (v, i) => v - lr * (m * b[i]! + g[i]! + wd * v));
  }
  const note = [diff1 && `step 1: ${diff1}`, diff2 && `step 2: ${diff2}`].filter(Boolean).join("; ");
  return { loss2: meanNll(fwd2.logProbs, f.labels), parameters: p2, buffers, note };
}
