/**
 * Storage precision of the reference CNN. The same layer code runs on either array type: Float32Array is the
 * production (training) path, Float64Array exists so conformance can hold the formulas to float64 tolerance.
 * Arithmetic happens in JS doubles either way; only stores round to the storage type.
 */
export type Arr = Float32Array | Float64Array;
export type CnnPrecision = "float32" | "float64";

export interface ArrayFactory {
  readonly precision: CnnPrecision;
  alloc(n: number): Arr;
  /** Zeroed, on a SharedArrayBuffer (activations that a worker thread reads and writes). */
  allocShared(n: number): Arr;
  /** A copy of `src` in the storage type. */
  from(src: ArrayLike<number>): Arr;
}

export function arrayFactory(precision: CnnPrecision): ArrayFactory {
  if (precision === "float32") {
    return {
      precision,
      alloc: (n) => new Float32Array(n),
      allocShared: (n) => new Float32Array(new SharedArrayBuffer(n * 4)),
      from: (src) => Float32Array.from(src),
    };
  }
  return {
    precision,
    alloc: (n) => new Float64Array(n),
    allocShared: (n) => new Float64Array(new SharedArrayBuffer(n * 8)),
    from: (src) => Float64Array.from(src),
  };
}
