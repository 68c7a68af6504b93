import { CNN_BUFFERS, CNN_PARAMS } from "./architecture.ts";
import { mulberry32 } from "../rng.ts";

export type TensorMap = Record<string, Float64Array>;

/**
 * Seeded initial parameters, distributed like PyTorch's defaults (conv/linear weight and bias ~ U(±1/√fan_in),
 * BN weight 1, bias 0), drawn from the shared generator so every backend starts from the same numbers.
 */
export function initParameters(seed: number): TensorMap {
  const rand = mulberry32(seed);
  const out: TensorMap = {};
  for (const p of CNN_PARAMS) {
    const t = new Float64Array(p.size);
    const isBn = p.layer.startsWith("bn");
    if (isBn) t.fill(p.role === "weight" ? 1 : 0);
    else {
      const weight = CNN_PARAMS.find((q) => q.layer === p.layer && q.role === "weight")!;
      const fanIn = weight.size / weight.shape[0]!;
      const bound = 1 / Math.sqrt(fanIn);
      for (let i = 0; i < t.length; i++) t[i] = (rand() * 2 - 1) * bound;
    }
    out[p.name] = t;
  }
  return out;
}

/** Fresh BN buffers: running mean 0, running var 1, no batches tracked. */
export function initBuffers(): TensorMap {
  const out: TensorMap = {};
  for (const b of CNN_BUFFERS) out[b.name] = new Float64Array(b.size).fill(b.role === "running_var" ? 1 : 0);
  return out;
}
