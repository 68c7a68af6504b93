import { expect, it } from "vitest";
import { describeConformance } from "@nnspec/conformance/vitest";
import { initParameters } from "@nnspec/spec";
import { createBackend } from "../src/index.ts";

// The same conformance suite as conformance.test.ts, inside headless Chromium (vitest "browser" project, which
// serves COOP/COEP headers: the model's shared memory and its Web Workers need cross-origin isolation).
await describeConformance("wasm in Chromium", () => createBackend());
await describeConformance("wasm in Chromium", () => createBackend({ threads: 1 }));

it("runs threaded in the page: cross-origin isolated, Web Workers on one shared memory", async () => {
  expect(crossOriginIsolated).toBe(true);
  const backend = await createBackend({ threads: 2 });
  try {
    expect(backend.manifest.environment).toBe("browser");
    expect(backend.manifest.device).toBe("wasm simd128 (AssemblyScript), 2 threads");
    const model = await backend.cnn!.create({ parameters: initParameters(1) });
    const x = Float32Array.from({ length: 4 * 784 }, (_, i) => Math.sin(i));
    await model.forward(x, 4, { mode: "train", dropout: { seed: 1, step: 0 } });
    expect(Number.isFinite((await model.backward([0, 1, 2, 3])).loss)).toBe(true);
  } finally {
    await backend.dispose?.();
  }
});

// The page cannot rebuild the binary, but it can tell whether the one it loaded was built from these sources.
const sources = (import.meta as unknown as { glob(pattern: string, options: object): Record<string, string> }).glob(
  "../assembly/*.ts",
  { query: "?raw", import: "default", eager: true },
);

it("loads a binary built from the current assembly/ sources (same hash as scripts/build-wasm.mjs records)", async () => {
  const record = (await (await fetch(new URL("../src/wasm/nnspec.json", import.meta.url))).json()) as {
    sourceHash: string;
    wasmSha256: string;
    asc: string;
    flags: string[];
    sources: string[];
  };
  const names = Object.keys(sources)
    .map((p) => p.split("/").at(-1)!)
    .sort();
  expect(names).toEqual(record.sources);
  const parts: Uint8Array[] = [new TextEncoder().encode(`asc ${record.asc}\0${record.flags.join(" ")}\0`)];
  for (const name of names) parts.push(new TextEncoder().encode(`${name}\0${sources[`../assembly/${name}`]!}\0`));
  const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  const hex = async (data: BufferSource) =>
    [...new Uint8Array(await crypto.subtle.digest("SHA-256", data))]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("");
  expect(await hex(all), "src/wasm/nnspec.wasm is stale: run pnpm --filter @nnspec/backend-wasm build:wasm").toBe(
    record.sourceHash,
  );
  const wasm = await (await fetch(new URL("../src/wasm/nnspec.wasm", import.meta.url))).arrayBuffer();
  expect(await hex(wasm)).toBe(record.wasmSha256);
});
