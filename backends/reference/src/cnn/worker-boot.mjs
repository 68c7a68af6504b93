// Worker entry that plain node can start (worker threads inherit neither tsx's nor vitest's TS handling).
// In the workspace the entry is the TypeScript worker, loaded through tsx's scoped loader (works the same under
// `tsx` scripts and under vitest); from the published dist/ it is the compiled .js, imported directly — no tsx.
import { workerData } from "node:worker_threads";

const entry = workerData.entry;
if (entry.endsWith(".ts")) {
  const { tsImport } = await import("tsx/esm/api");
  await tsImport(entry, import.meta.url);
} else {
  await import(entry);
}
