// Worker entry that plain node can start: it loads the TypeScript worker through tsx's scoped loader, which
// works the same under `tsx` scripts and under vitest (worker threads do not inherit either's TS handling).
import { workerData } from "node:worker_threads";
import { tsImport } from "tsx/esm/api";

await tsImport(workerData.entry, import.meta.url);
