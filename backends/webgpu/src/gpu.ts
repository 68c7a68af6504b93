/// <reference types="@webgpu/types" />
/**
 * A thin layer over one GPUDevice for the WGSL backend: compiled pipelines (once per device), storage buffers,
 * uniform blocks, dispatches recorded into ONE pending command encoder, and readbacks that submit it.
 *
 * Work is recorded, not run: every dispatch of a contract call (a whole train forward, a whole backward, the SGD
 * update) goes into the pending encoder, which is submitted once, when something must be read back (or on flush()).
 * Uniform blocks are keyed: a key written twice with different bytes before a submit forces the submit in between
 * (queue.writeBuffer lands before the whole submitted command buffer, so the first dispatch would see the second
 * value otherwise).
 */

/** GPUBufferUsage / GPUMapMode values (WebGPU spec constants; Node's Dawn defines the globals only once loaded). */
const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
const MAP_READ = 0x1;

export type UniformValue = { u: number } | { f: number } | { i: number };

export interface Dispatch {
  readonly pipeline: string;
  /** Bindings in @binding order (group 0): buffers, or a uniform block given by key. */
  readonly bindings: readonly GPUBuffer[];
  readonly workgroups: readonly [number, number?, number?];
}

export class GpuError extends Error {
  override name = "GpuError";
}

export class Gpu {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly uniforms = new Map<string, { buffer: GPUBuffer; bytes: Uint8Array }>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  /** Uniform keys written since the last submit, with the bytes written. */
  private readonly pendingWrites = new Map<string, Uint8Array>();
  private readonly errors: string[] = [];
  private lost: string | null = null;
  private readonly owned = new Set<GPUBuffer>();
  submits = 0;

  constructor(
    readonly device: GPUDevice,
    readonly label: string,
  ) {
    device.onuncapturederror = (e: GPUUncapturedErrorEvent) => {
      this.errors.push(e.error.message);
    };
    void device.lost.then((info) => {
      this.lost = `${info.reason}: ${info.message}`;
    });
  }

  /** Compile `code` (WGSL) once under `name`; entry point "main". Throws with the compiler's messages. */
  async compile(name: string, code: string, entryPoint = "main"): Promise<void> {
    if (this.pipelines.has(name)) return;
    const module = this.device.createShaderModule({ label: `${this.label} ${name}`, code });
    const info = await module.getCompilationInfo();
    const bad = info.messages.filter((m) => m.type === "error");
    if (bad.length)
      throw new GpuError(
        `${this.label}: WGSL ${name} does not compile:\n${bad.map((m) => `  ${m.lineNum}:${m.linePos} ${m.message}`).join("\n")}`,
      );
    // Rejects with a GPUPipelineError (e.g. a limit exceeded) rather than reporting through an error scope, so
    // concurrent compiles cannot take each other's errors.
    const pipeline = await this.device
      .createComputePipelineAsync({ label: `${this.label} ${name}`, layout: "auto", compute: { module, entryPoint } })
      .catch((e: unknown) => {
        throw new GpuError(`${this.label}: pipeline ${name}: ${e instanceof Error ? e.message : String(e)}`);
      });
    this.pipelines.set(name, pipeline);
  }

  /** A storage buffer of `floats` 4-byte elements (f32 or u32), zero-filled, optionally with initial contents. */
  storage(label: string, elements: number, init?: Float32Array | Uint32Array): GPUBuffer {
    const size = Math.max(16, Math.ceil((elements * 4) / 16) * 16);
    const buffer = this.device.createBuffer({
      label: `${this.label} ${label}`,
      size,
      usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST,
      mappedAtCreation: init !== undefined,
    });
    if (init) {
      const dst =
        init instanceof Float32Array
          ? new Float32Array(buffer.getMappedRange())
          : new Uint32Array(buffer.getMappedRange());
      dst.set(init);
      buffer.unmap();
    }
    this.owned.add(buffer);
    return buffer;
  }

  /**
   * Overwrite (part of) a buffer from the CPU. It lands before the pending encoder runs, so callers write inputs
   * (images, labels) before recording the work that reads them, never into a buffer pending work still reads.
   */
  write(buffer: GPUBuffer, data: Float32Array | Uint32Array, offsetElements = 0): void {
    this.device.queue.writeBuffer(buffer, offsetElements * 4, data.buffer, data.byteOffset, data.byteLength);
  }

  /** The uniform block under `key` holding `values` (each 4 bytes, in struct order), written before the next submit. */
  uniform(key: string, values: readonly UniformValue[]): GPUBuffer {
    const bytes = new Uint8Array(Math.max(16, Math.ceil((values.length * 4) / 16) * 16));
    const view = new DataView(bytes.buffer);
    values.forEach((v, i) => {
      if ("u" in v) view.setUint32(i * 4, v.u >>> 0, true);
      else if ("i" in v) view.setInt32(i * 4, v.i | 0, true);
      else view.setFloat32(i * 4, v.f, true);
    });
    let u = this.uniforms.get(key);
    if (!u || u.buffer.size !== bytes.byteLength) {
      u?.buffer.destroy();
      const buffer = this.device.createBuffer({
        label: `${this.label} uniform ${key}`,
        size: bytes.byteLength,
        usage: USAGE.UNIFORM | USAGE.COPY_DST,
      });
      u = { buffer, bytes: new Uint8Array(0) };
      this.uniforms.set(key, u);
    }
    const pending = this.pendingWrites.get(key);
    if (pending) {
      if (sameBytes(pending, bytes)) return u.buffer;
      this.submit(); // the dispatches recorded so far must see the old bytes
    }
    if (!sameBytes(u.bytes, bytes)) {
      this.device.queue.writeBuffer(u.buffer, 0, bytes);
      u.bytes = bytes;
    }
    this.pendingWrites.set(key, bytes);
    return u.buffer;
  }

  /** Record one dispatch into the pending encoder. */
  dispatch(d: Dispatch): void {
    const pipeline = this.pipelines.get(d.pipeline);
    if (!pipeline) throw new GpuError(`${this.label}: pipeline ${d.pipeline} was never compiled`);
    const bindGroup = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: d.bindings.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    const [x, y = 1, z = 1] = d.workgroups;
    if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z);
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.pass) {
      this.encoder ??= this.device.createCommandEncoder({ label: `${this.label} step` });
      this.pass = this.encoder.beginComputePass();
    }
    return this.pass;
  }

  private commandEncoder(): GPUCommandEncoder {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    this.encoder ??= this.device.createCommandEncoder({ label: `${this.label} step` });
    return this.encoder;
  }

  /** Copy within the device (recorded into the pending encoder, outside any compute pass). */
  copy(src: GPUBuffer, srcOffsetElements: number, dst: GPUBuffer, dstOffsetElements: number, elements: number): void {
    if (elements > 0)
      this.commandEncoder().copyBufferToBuffer(src, srcOffsetElements * 4, dst, dstOffsetElements * 4, elements * 4);
  }

  /** Submit the pending encoder, if any. */
  submit(): void {
    this.pendingWrites.clear();
    if (!this.encoder) return;
    const encoder = this.commandEncoder();
    this.encoder = null;
    this.device.queue.submit([encoder.finish()]);
    this.submits++;
  }

  /** Submit what is pending and wait until the device has run it; throws any error the device reported. */
  async flush(): Promise<void> {
    this.submit();
    await this.device.queue.onSubmittedWorkDone();
    this.check();
  }

  private check(): void {
    if (this.lost) throw new GpuError(`${this.label}: the GPU device was lost (${this.lost})`);
    if (this.errors.length) {
      const all = this.errors.splice(0);
      throw new GpuError(`${this.label}: the device reported ${all.length} error(s): ${all.slice(0, 3).join(" | ")}`);
    }
  }

  /**
   * Read back the given element ranges: one staging buffer, copies recorded after the pending work, one submit, one
   * map. Returns raw 4-byte words (view them as f32 or u32).
   */
  async read(parts: ReadonlyArray<{ buffer: GPUBuffer; offset?: number; elements: number }>): Promise<ArrayBuffer[]> {
    const total = parts.reduce((a, p) => a + p.elements, 0);
    const staging = this.device.createBuffer({
      label: `${this.label} readback`,
      size: Math.max(16, Math.ceil((total * 4) / 16) * 16),
      usage: USAGE.MAP_READ | USAGE.COPY_DST,
    });
    let at = 0;
    for (const p of parts) {
      this.copy(p.buffer, p.offset ?? 0, staging, at, p.elements);
      at += p.elements;
    }
    this.submit();
    try {
      await staging.mapAsync(MAP_READ);
      const all = staging.getMappedRange().slice(0);
      staging.unmap();
      this.check();
      at = 0;
      return parts.map((p) => {
        const out = all.slice(at * 4, (at + p.elements) * 4);
        at += p.elements;
        return out;
      });
    } catch (e) {
      this.check();
      throw e;
    } finally {
      staging.destroy();
    }
  }

  release(buffer: GPUBuffer | null | undefined): void {
    if (!buffer) return;
    this.owned.delete(buffer);
    buffer.destroy();
  }

  /** Destroy every buffer this Gpu made (the device stays: pipelines are reused by later models). */
  releaseAll(buffers: Iterable<GPUBuffer>): void {
    for (const b of buffers) this.release(b);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Workgroup counts for `count` invocations at `size` per workgroup, spread over x and y (x ≤ 65535). */
export function grid1d(count: number, size = 256): [number, number] {
  const groups = Math.ceil(count / size);
  if (groups <= 65535) return [Math.max(groups, 0), 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y];
}
