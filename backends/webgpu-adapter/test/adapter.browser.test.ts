import { describe, expect, it } from "vitest";
import { requestAdapter, WebGpuUnavailableError } from "../src/index.ts";

describe("webgpu-adapter in Chromium", () => {
  it("finds navigator.gpu's adapter (--enable-unsafe-webgpu, http://localhost) and says whether it is a CPU fallback", async () => {
    const a = await requestAdapter();
    expect(a.environment).toBe("browser");
    expect(a.label).toMatch(a.info.isFallbackAdapter ? /CPU fallback adapter/ : /hardware adapter/);
    console.log(`webgpu-adapter (Chromium): ${a.label}`);
  });

  it("names the missing flag when the page has no navigator.gpu", async () => {
    Object.defineProperty(navigator, "gpu", { value: undefined, configurable: true });
    try {
      const e = await requestAdapter().catch((err: unknown) => err);
      expect(e).toBeInstanceOf(WebGpuUnavailableError);
      expect((e as Error).message).toMatch(
        /navigator\.gpu is missing in this page: launch Chromium with --enable-unsafe-webgpu/,
      );
    } finally {
      delete (navigator as { gpu?: unknown }).gpu;
    }
    expect(navigator.gpu).toBeDefined();
  });
});
