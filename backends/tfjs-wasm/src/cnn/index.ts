import type { CnnOps } from "@nnspec/spec";
import { TfjsCnnModel } from "./model.ts";

export { TfjsCnnModel } from "./model.ts";

/** The CNN operations; tfjs must already run on the wasm backend (createBackend sees to it). */
export const cnnOps: CnnOps = {
  async create(init) {
    return new TfjsCnnModel(init);
  },
};
