import { IN_NODE, type KernelExports } from "./kernels.ts";

/**
 * The threads of one model. With one thread the main thread runs each job itself (synchronously, inside the
 * awaited call). With more, `threads` workers (Node worker_threads or Web Workers) each run an instance of the
 * kernels on the model's shared memory, the main thread only hands out jobs: it bumps a generation word,
 * the workers run their slices of the batch (meeting at barriers inside wasm) and count themselves done, and the
 * main thread awaits the count with Atomics.waitAsync — so it never blocks, in Node or in a page.
 */
export interface ThreadPool {
  readonly threads: number;
  /** Runs the job the control block describes on every thread; rejects if a thread failed. */
  run(): Promise<void>;
  close(): Promise<void>;
}

/** What a platform gives the pool: a started worker, told its init message, reporting messages and failures. */
export interface WorkerHandle {
  post(message: unknown): void;
  onMessage(listener: (message: unknown) => void): void;
  onFailure(listener: (error: Error) => void): void;
  terminate(): Promise<void>;
  /** Node: let the process exit while the worker idles; a no-op in browsers. */
  setIdle(idle: boolean): void;
}

/** Atomics.waitAsync (ES2024; in Node ≥ 16 and Chromium ≥ 87), typed here because this project compiles against ES2022. */
function waitAsync(
  array: Int32Array,
  index: number,
  value: number,
): { async: false; value: string } | { async: true; value: Promise<string> } {
  return (Atomics as unknown as { waitAsync: typeof waitAsync }).waitAsync(array, index, value);
}

export function singleThread(ex: KernelExports): ThreadPool {
  return {
    threads: 1,
    async run() {
      ex.run(0);
    },
    async close() {},
  };
}

export async function startWorkers(
  ex: KernelExports,
  module: WebAssembly.Module,
  threads: number,
): Promise<ThreadPool> {
  const spawn = IN_NODE
    ? (await import("./spawn-node.ts")).spawnNodeWorker
    : (await import("./spawn-browser.ts")).spawnBrowserWorker;
  const words = new Int32Array(ex.memory.buffer, 0, 65536 / 4);
  const GEN = ex.jobGenAddress() >> 2,
    DONE = ex.jobDoneAddress() >> 2,
    ERROR = ex.jobErrorAddress() >> 2,
    STOP = ex.jobStopAddress() >> 2;
  const workers: WorkerHandle[] = [];
  let failure: Error | null = null;
  let failed: ((e: Error) => void) | null = null;
  const fail = (e: Error) => {
    failure ??= e;
    failed?.(failure);
  };
  try {
    await Promise.all(
      Array.from({ length: threads }, async (_, tid) => {
        const w = await spawn();
        workers.push(w);
        return new Promise<void>((resolve, reject) => {
          w.onFailure((e) => {
            reject(e);
            fail(e);
          });
          w.onMessage((m) => {
            const msg = m as { ready?: boolean; error?: string };
            if (msg.ready) resolve();
            if (msg.error) fail(new Error(`wasm backend: ${msg.error}`));
          });
          w.post({ module, memory: ex.memory, tid });
        });
      }),
    );
  } catch (e) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw e;
  }
  for (const w of workers) w.setIdle(true);

  return {
    threads,
    async run() {
      if (failure) throw failure;
      for (const w of workers) w.setIdle(false);
      try {
        Atomics.store(words, DONE, 0);
        Atomics.add(words, GEN, 1);
        Atomics.notify(words, GEN);
        const failedNow = new Promise<never>((_, reject) => {
          failed = reject;
        });
        failedNow.catch(() => {});
        for (;;) {
          const done = Atomics.load(words, DONE);
          if (done >= threads) break;
          const w = waitAsync(words, DONE, done);
          if (w.async) await Promise.race([w.value, failedNow]);
        }
        failed = null;
        if (Atomics.load(words, ERROR) !== 0) {
          // the worker posted its message before counting itself done; give it a moment to arrive
          for (let i = 0; i < 100 && !failure; i++) await new Promise((r) => setTimeout(r, 10));
          throw failure ?? new Error("wasm backend: a worker thread failed");
        }
      } finally {
        for (const w of workers) w.setIdle(true);
      }
    },
    async close() {
      failure ??= new Error("wasm backend: model disposed");
      Atomics.store(words, STOP, 1);
      Atomics.add(words, GEN, 1);
      Atomics.notify(words, GEN);
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
