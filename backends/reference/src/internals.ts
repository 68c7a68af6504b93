/**
 * The reference backend's building blocks, for tools in this repository that build variants of it (the mutation
 * corpus in tools/src/mutants). Not part of the backend contract and not covered by semver: use createBackend.
 */
export { arrayFactory, type Arr, type ArrayFactory, type CnnPrecision } from "./cnn/arrays.ts";
export {
  BatchNorm2d,
  Conv2d,
  Dropout,
  GlobalAvgPool,
  Linear,
  LogSoftmax,
  MaxPool2d,
  Relu,
  buildLayers,
  type Built,
  type ForwardContext,
  type Layer,
  type ParamSlot,
} from "./cnn/layers.ts";
export { ReferenceCnnModel, type ReferenceCnnSeam } from "./cnn/model.ts";
export { net222Ops } from "./net222.ts";
