import type { Backend } from "@nnspec/spec";

/**
 * Placeholder for the backend under test in the in-page bench: the bench's vitest project (browser/bench-project.ts)
 * aliases this module to the job's backend entry. Reaching this body means the page ran outside that project.
 */
export async function createBackend(_options?: Record<string, unknown>): Promise<Backend> {
  throw new Error(
    "nnspec-bench-page-backend.ts was not aliased to a backend: the in-page bench runs only under `nnspec bench`",
  );
}
