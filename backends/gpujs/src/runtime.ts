import {
  CPUKernel,
  GPU,
  HeadlessGLKernel,
  WebAssemblyKernel,
  WebGL2Kernel,
  WebGLKernel,
  type IKernelRunShortcut,
  type Kernel as GpuKernel,
  type KernelFunction,
  type KernelVariable,
  type Texture,
} from "gpu.js";

/**
 * One gpu.js instance and the kernels built on it. Every kernel here has a flat 1-D output and runs in
 * pipeline mode, so on WebGL its result stays a GPU texture that the next kernel reads directly; on the
 * webasm/cpu modes gpu.js hands back a Float32Array (there is no device memory to keep things in).
 */

/** The gpu.js modes this backend accepts; "gpu" lets gpu.js pick (WebGL2 in a browser, webasm in Node without headless-gl). */
export const GPUJS_MODES = ["gpu", "webgl2", "webgl", "headlessgl", "webasm", "cpu"] as const;
export type GpujsMode = (typeof GPUJS_MODES)[number];

/** A value living in gpu.js: a texture on the GL modes, a Float32Array on webasm/cpu. */
export type Tensor = Texture | Float32Array;

/** What a kernel body sees as `this`: the flat output index and its compile-time constants. */
export interface KernelThis<K extends string> {
  readonly thread: { readonly x: number };
  readonly constants: Readonly<Record<K, number>>;
}

/** A kernel argument: a tensor or a scalar. */
export type Arg = Tensor | number;

export type Kernel = (...args: Arg[]) => Promise<Tensor>;

const isTexture = (t: Tensor): t is Texture => !(t instanceof Float32Array);

export class GpuRuntime {
  readonly gpu: GPU;
  /** The mode gpu.js actually runs kernels in (known once the first kernel is built). */
  private actualMode: string | null = null;
  private readonly cache = new Map<string, IKernelRunShortcut>();
  private destroyed = false;

  /**
   * `asyncKernels`: run kernels under gpu.js's async contract. On webasm that splits big kernels over a
   * worker pool (threads, identical results); on WebGL2 readbacks go through a fence instead of blocking.
   */
  constructor(
    readonly requestedMode: GpujsMode,
    readonly asyncKernels = false,
  ) {
    this.gpu = new GPU({ mode: requestedMode });
  }

  /** The executing mode, e.g. "webasm", "webgl2", "cpu" (a kernel gpu.js degraded to the cpu backend would say "cpu"). */
  get mode(): string {
    return this.actualMode ?? this.gpu.mode ?? this.requestedMode;
  }

  /** True where kernel outputs stay on the GPU as textures (and must be deleted explicitly). */
  get keepsTextures(): boolean {
    return /webgl|headlessgl/.test(this.mode);
  }

  /**
   * A cached kernel: `fn` over a flat output of `size` cells with `constants` baked in (they size loops and
   * index arithmetic, so each geometry compiles once). `name` only has to be unique per kernel body.
   */
  kernel<K extends string>(
    name: string,
    fn: (this: KernelThis<K>, ...args: never[]) => number,
    size: number,
    constants: Readonly<Record<K, number>>,
  ): Kernel {
    if (this.destroyed) throw new Error("gpujs backend: runtime used after dispose()");
    const base = `${name}|${size}|${JSON.stringify(constants)}`;
    return async (...args: Arg[]) => {
      // gpu.js fixes argument sizes at a kernel's first call, so the argument shapes are part of the key.
      const key = `${base}|${args.map(argSignature).join(",")}`;
      let k = this.cache.get(key);
      if (!k) {
        // The kernel bodies are typed for TypeScript's benefit; gpu.js only reads their source text.
        k = this.gpu.createKernel(fn as unknown as KernelFunction, {
          output: [size],
          constants,
          pipeline: true,
          // Every result is a fresh texture the caller owns (and releases): kernels are shared across layers.
          immutable: true,
          precision: "single",
          tactic: "precision",
          asyncMode: this.asyncKernels,
        });
        this.cache.set(key, k);
      }
      const t = await (k(...(args as KernelVariable[])) as unknown as Tensor | Promise<Tensor>);
      if (this.actualMode === null) this.actualMode = executingMode(k.kernel);
      return t;
    };
  }

  /** Host values into gpu.js through a copy kernel, so kernels always receive the same argument kind. */
  async upload(values: ArrayLike<number>): Promise<Tensor> {
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    if (!this.keepsTextures && this.actualMode !== null) return data.slice();
    return this.kernel("upload", copyKernel, data.length, {})(data);
  }

  /** Read a tensor back as a Float32Array of `size` values. */
  async read(t: Tensor, size: number): Promise<Float32Array> {
    const arr = isTexture(t) ? ((await t.toArray()) as unknown) : t;
    if (arr instanceof Float32Array) {
      if (arr.length !== size) throw new Error(`gpujs backend: read ${arr.length} values, expected ${size}`);
      return arr === t ? arr.slice() : arr;
    }
    const flat = Float32Array.from(arr as ArrayLike<number>);
    if (flat.length !== size) throw new Error(`gpujs backend: read ${flat.length} values, expected ${size}`);
    return flat;
  }

  /** Free a tensor's device memory (a no-op where tensors are plain arrays). */
  release(t: Tensor | null | undefined): void {
    if (t && isTexture(t)) t.delete();
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const k of this.cache.values()) k.destroy();
    this.cache.clear();
    this.gpu.destroy();
  }
}

/** The backend a built kernel really runs on (the GL kernels all report the static mode "gpu", so ask the class). */
function executingMode(k: GpuKernel): string {
  if (k instanceof HeadlessGLKernel) return "headlessgl";
  if (k instanceof WebGL2Kernel) return "webgl2";
  if (k instanceof WebGLKernel) return "webgl";
  if (k instanceof WebAssemblyKernel) return "webasm";
  if (k instanceof CPUKernel) return "cpu";
  return String((k.constructor as { mode?: unknown }).mode ?? "unknown");
}

function argSignature(a: Arg): string {
  if (typeof a === "number") return "s";
  if (a instanceof Float32Array) return String(a.length);
  return JSON.stringify((a as unknown as { output?: unknown }).output ?? "t");
}

function copyKernel(this: KernelThis<never>, a: Float32Array): number {
  return a[this.thread.x]!;
}

/** Tensors created during one pass, released together when the pass's results are no longer needed. */
export class Scope {
  private readonly held: Tensor[] = [];
  constructor(private readonly rt: GpuRuntime) {}
  keep<T extends Tensor>(t: T): T {
    this.held.push(t);
    return t;
  }
  releaseAll(): void {
    for (const t of this.held.splice(0)) this.rt.release(t);
  }
  /** Release everything but `survivor` (which leaves this scope; its owner now releases it). */
  releaseAllExcept(survivor: Tensor): void {
    for (const t of this.held.splice(0)) if (t !== survivor) this.rt.release(t);
  }
}
