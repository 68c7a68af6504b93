// The mask code lives in @nnspec/tfjs-common; re-exported here for this package's tests.
export { dropoutMaskNhwc } from "@nnspec/tfjs-common";
