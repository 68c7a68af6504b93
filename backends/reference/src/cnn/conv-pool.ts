import { Worker } from "node:worker_threads";
import type { Arr } from "./arrays.ts";
import type { ConvGeometry } from "./conv-kernels.ts";

/** Messages to the convolution worker. Activation arrays are views on SharedArrayBuffers, so nothing big is copied. */
export type ConvJob =
  | { readonly id: number; readonly op: "ping" }
  | {
      readonly id: number;
      readonly op: "forward";
      readonly g: ConvGeometry;
      readonly x: Arr;
      readonly weight: Arr;
      readonly bias: Arr;
      readonly out: Arr;
      readonly i0: number;
      readonly i1: number;
    }
  | {
      readonly id: number;
      readonly op: "backward";
      readonly g: ConvGeometry;
      readonly x: Arr;
      readonly dy: Arr;
      readonly wflip: Arr | null;
      readonly dx: Arr | null;
      readonly i0: number;
      readonly i1: number;
    };

export type ConvReply =
  | { readonly id: number; readonly ok: true; readonly gW?: Float64Array; readonly gB?: Float64Array }
  | { readonly id: number; readonly ok: false; readonly error: string };

type JobBody = ConvJob extends infer J ? (J extends ConvJob ? Omit<J, "id"> : never) : never;

/**
 * One helper thread for convolutions: the main thread takes one half of each batch, the worker the other.
 * The worker is referenced only while a job is in flight, so a forgotten dispose() never keeps node alive.
 */
export class ConvPool {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (r: ConvReply & { ok: true }) => void; reject: (e: Error) => void }
  >();
  private failure: Error | null = null;

  private constructor(private readonly worker: Worker) {
    worker.unref();
    worker.on("message", (r: ConvReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (this.pending.size === 0) worker.unref();
      if (r.ok) p.resolve(r);
      else p.reject(new Error(`conv worker: ${r.error}`));
    });
    const fail = (e: Error) => {
      this.failure = e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`conv worker exited (code ${code})`)));
  }

  /** Starts the worker and waits for its answer to a ping. */
  static async start(): Promise<ConvPool> {
    // This module runs as .ts in the workspace (tsx/vitest) and as compiled .js from dist/: the worker entry is
    // the sibling with the same extension, and worker-boot.mjs only brings in tsx for a .ts entry.
    const ext = new URL(import.meta.url).pathname.endsWith(".ts") ? ".ts" : ".js"; // tsx may append a ?query
    const worker = new Worker(new URL("./worker-boot.mjs", import.meta.url), {
      workerData: { entry: new URL(`./conv-worker${ext}`, import.meta.url).href },
    });
    const pool = new ConvPool(worker);
    await pool.run({ op: "ping" });
    return pool;
  }

  run(job: JobBody): Promise<ConvReply & { ok: true }> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ ...job, id });
    });
  }

  async close(): Promise<void> {
    this.failure ??= new Error("conv pool closed");
    this.worker.removeAllListeners("exit");
    await this.worker.terminate();
  }
}
