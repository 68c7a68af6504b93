// Web Worker entry (module worker): the first message carries the module, the shared memory and this thread's id.
import { workerLoop } from "./worker-loop.mjs";

self.addEventListener("message", (event) => workerLoop(event.data, (m) => self.postMessage(m)), { once: true });
