import { Worker } from "node:worker_threads";
import type { WorkerHandle } from "./threads.ts";

/** A worker_threads worker running worker-node.mjs (plain JavaScript: no TypeScript loader needed in the thread). */
export async function spawnNodeWorker(): Promise<WorkerHandle> {
  const worker = new Worker(new URL("./worker-node.mjs", import.meta.url));
  let exited = false;
  worker.on("exit", () => {
    exited = true;
  });
  return {
    post: (m) => worker.postMessage(m),
    onMessage: (l) => worker.on("message", l),
    onFailure: (l) => {
      worker.on("error", l);
      worker.on("exit", (code) => l(new Error(`wasm backend: a worker thread exited (code ${code})`)));
    },
    async terminate() {
      worker.removeAllListeners("exit");
      if (!exited) await worker.terminate();
    },
    setIdle: (idle) => (idle ? worker.unref() : worker.ref()),
  };
}
