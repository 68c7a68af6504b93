import { createBackend as createReference } from "@nnspec/backend-reference";
import type { Backend } from "@nnspec/spec";

/**
 * The reference CNN (forward only) with wrong shapes: block1 comes back half as long, and the eval-mode log-probs
 * as a plain object instead of a tensor. Each is that check's failure, named; the other checks pass.
 */
export async function createBackend(): Promise<Backend> {
  const ref = await createReference({ precision: "float64" });
  return {
    manifest: { ...ref.manifest, name: "cnn-shapes", capabilities: ["cnn.forward"] },
    cnn: {
      async create(init) {
        const m = await ref.cnn!.create(init);
        return {
          ...m,
          summary: () => m.summary(),
          parameters: () => m.parameters(),
          buffers: () => m.buffers(),
          dispose: () => m.dispose(),
          async forward(x, n, o) {
            const r = await m.forward(x, n, o);
            if (o.mode === "eval") return { logProbs: { length: r.logProbs.length } as unknown as Float64Array };
            const block1 = r.blocks?.block1;
            return block1 ? { ...r, blocks: { ...r.blocks, block1: block1.subarray(0, block1.length / 2) } } : r;
          },
        };
      },
    },
    dispose: () => ref.dispose?.() ?? Promise.resolve(),
  };
}
