import type { CnnOps } from "@nnspec/spec";
import type { GpuRuntime } from "../runtime.ts";
import { GpujsCnnModel } from "./model.ts";

/** CNN models on one shared gpu.js runtime (kernels compile once per geometry and are reused by every model). */
export function createCnnOps(rt: GpuRuntime): CnnOps {
  return {
    create: (init) => GpujsCnnModel.create(rt, init),
  };
}
