/**
 * The backend-agnostic tfjs model code shared by the tfjs backends (tfjs-wasm, tfjs-webgl): the 2-2-2 network
 * and the CNN as plain tfjs ops. It never picks a tfjs backend; each backend package sets up its own and then
 * hands these ops out. A library, not a backend: no createBackend here.
 */
export { net222Ops } from "./net222.ts";
export { createCnnOps, dropoutMaskNhwc, TfjsCnnModel, type TfjsCnnOptions } from "./cnn/index.ts";
