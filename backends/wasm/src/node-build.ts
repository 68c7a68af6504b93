import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

/**
 * Node only. Reads the kernels' binary; inside this package's source tree (assembly/ and scripts/ present, i.e. the
 * workspace rather than a published dist/) it first rebuilds the binary if it is missing or stale against its
 * sources, so a test run never measures or judges old kernels.
 */
export async function readFreshWasm(url: URL): Promise<Uint8Array> {
  const script = new URL("../scripts/build-wasm.mjs", import.meta.url);
  if (
    existsSync(fileURLToPath(new URL("../assembly/index.ts", import.meta.url))) &&
    existsSync(fileURLToPath(script))
  ) {
    const build = (await import(/* @vite-ignore */ script.href)) as { ensureBuilt(): Promise<boolean> };
    await build.ensureBuilt();
  }
  const file = fileURLToPath(url);
  if (!existsSync(file))
    throw new Error(`wasm backend: ${file} is missing (build it: pnpm --filter @nnspec/backend-wasm build:wasm)`);
  return readFile(file);
}
