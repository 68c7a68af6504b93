/**
 * The compiled AssemblyScript module (assembly/, built to src/wasm/nnspec.wasm by scripts/build-wasm.mjs) and the
 * typed view of its exports. Loaded once per JavaScript realm; every model instantiates it on its own memory.
 */

/** True under Node (fs and worker_threads available); false in a browser page. */
export const IN_NODE = typeof process !== "undefined" && typeof process.versions?.node === "string";

/** The exports of assembly/index.ts (addresses are byte offsets into the shared memory). */
export interface KernelExports {
  readonly memory: WebAssembly.Memory;
  paramCount(): number;
  plan(capacity: number, threads: number): number;
  batchArea(): number;
  run(tid: number): void;
  packAllWeights(): void;
  sgd(lr: number, momentum: number, weightDecay: number, first: boolean): void;
  net222Train(input: number, lr: number, steps: number, out: number): void;
  jobGenAddress(): number;
  jobDoneAddress(): number;
  jobErrorAddress(): number;
  jobStopAddress(): number;
  setJob(op: number, n: number, threads: number): void;
  setDropout(on: boolean): void;
  setDropoutLayer(layer: number, prefix: number, threshold: number, scale: number): void;
  lastLoss(): number;
  setProfiling(on: boolean): void;
  profileMs(kernel: number): number;
  inputAddress(): number;
  labelsAddress(): number;
  paramsAddress(): number;
  gradsAddress(): number;
  momentumAddress(): number;
  blockAddress(k: number): number;
  poolAddress(j: number): number;
  gapAddress(): number;
  logitsAddress(): number;
  logProbsAddress(): number;
  runningMeanAddress(k: number): number;
  runningVarAddress(k: number): number;
}

/** Job kinds of `run` (assembly/memory-map.ts OP_*). */
export const OP = { forwardTrain: 1, forwardEval: 2, backward: 3 } as const;

/** Largest memory a model may grow to: 2 GiB (32768 pages of 64 KiB), about 3000 training images per batch. */
export const MAX_PAGES = 32768;

let compiled: Promise<WebAssembly.Module> | null = null;

/** The compiled module (compiled once; Node checks it against assembly/ first and rebuilds it when stale). */
export function kernelModule(): Promise<WebAssembly.Module> {
  compiled ??= compile().catch((e: unknown) => {
    compiled = null;
    throw e;
  });
  return compiled;
}

async function compile(): Promise<WebAssembly.Module> {
  const url = new URL("./wasm/nnspec.wasm", import.meta.url);
  let bytes: BufferSource;
  if (IN_NODE) {
    const { readFreshWasm } = await import("./node-build.ts");
    bytes = (await readFreshWasm(url)) as Uint8Array<ArrayBuffer>;
  } else {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`wasm backend: could not fetch ${url.href} (HTTP ${response.status})`);
    bytes = await response.arrayBuffer();
  }
  return WebAssembly.compile(bytes);
}

/** A shared memory for one model (shared: every thread's instance works on it). */
export function sharedMemory(): WebAssembly.Memory {
  try {
    return new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
  } catch (e) {
    const isolated = typeof crossOriginIsolated === "boolean" ? crossOriginIsolated : undefined;
    throw new Error(
      `wasm backend: cannot create a shared WebAssembly.Memory${isolated === false ? " (this page is not cross-origin isolated: serve it with COOP: same-origin and COEP: require-corp)" : ""}: ${String(e)}`,
    );
  }
}

export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const instance = new WebAssembly.Instance(module, { env: { memory, now: () => performance.now() } });
  return instance.exports as unknown as KernelExports;
}
