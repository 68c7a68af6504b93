import type { WorkerHandle } from "./threads.ts";

/** A module Web Worker running worker-browser.mjs; the page must be cross-origin isolated (shared memory). */
export async function spawnBrowserWorker(): Promise<WorkerHandle> {
  const worker = new Worker(new URL("./worker-browser.mjs", import.meta.url), { type: "module" });
  return {
    post: (m) => worker.postMessage(m),
    onMessage: (l) => worker.addEventListener("message", (e) => l(e.data)),
    onFailure: (l) => {
      worker.addEventListener("error", (e) =>
        l(new Error(`wasm backend: worker error: ${e.message || "failed to load worker-browser.mjs"}`)),
      );
      worker.addEventListener("messageerror", () =>
        l(new Error("wasm backend: a worker could not receive its message")),
      );
    },
    async terminate() {
      worker.terminate();
    },
    setIdle() {},
  };
}
