import type { CnnOps } from "@nnspec/spec";
import { TfjsCnnModel, type TfjsCnnOptions } from "./model.ts";

export { TfjsCnnModel, type TfjsCnnOptions } from "./model.ts";
export { dropoutMaskNhwc } from "./dropout-mask.ts";

/** The CNN operations on the active tfjs backend; the backend package sets that backend up before calling this. */
export function createCnnOps(options: TfjsCnnOptions): CnnOps {
  return {
    async create(init) {
      return new TfjsCnnModel(init, options);
    },
  };
}
