import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  adapterLabel,
  findSwiftShaderIcd,
  installNavigatorGpu,
  requestAdapter,
  requestComputeDevice,
} from "../src/index.ts";

const ENTRY = fileURLToPath(new URL("../src/index.ts", import.meta.url));

/** requestAdapter() in a fresh Node process (the Vulkan driver is chosen once per process) with `env`. */
function childAdapter(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const script = `import(${JSON.stringify(ENTRY)}).then((m) => m.requestAdapter()).then((a) => console.log("OK " + a.label), (e) => console.log(e.name + ": " + e.message));`;
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 60_000,
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
    });
    child.on("error", fail);
    child.on("close", (code) => done({ code, out }));
  });
}

describe("webgpu-adapter in Node", () => {
  it("gives navigator.gpu and an adapter: the system's Vulkan driver, else Chromium's SwiftShader ICD", async () => {
    const gpu = await installNavigatorGpu();
    expect((globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu).toBe(gpu);
    expect(typeof GPUBufferUsage.STORAGE).toBe("number");
    const a = await requestAdapter();
    expect(a.environment).toBe("node");
    expect(a.label).toContain(adapterLabel(a.info));
    expect(a.label).toMatch(a.info.isFallbackAdapter ? /CPU fallback adapter/ : /hardware adapter/);
    if (a.via.includes("set by this package"))
      expect(process.env.VK_ICD_FILENAMES).toBe((await findSwiftShaderIcd()).found);
    console.log(`webgpu-adapter (node): ${a.label}`);
    // A second caller (the other backend) gets its own adapter, and a device with the adapter's limits.
    const b = await requestAdapter();
    expect(b.adapter).not.toBe(a.adapter);
    const device = await requestComputeDevice(b.adapter);
    expect(device.limits.maxComputeWorkgroupStorageSize).toBe(b.adapter.limits.maxComputeWorkgroupStorageSize);
    device.destroy();
  });

  it("fails, naming the file, when VK_ICD_FILENAMES points at an ICD that gives no adapter", async () => {
    const r = await childAdapter({ VK_ICD_FILENAMES: "/nonexistent/nnspec_icd.json" });
    expect(r.out).toMatch(
      /^WebGpuUnavailableError: WebGPU in Node: Dawn \(webgpu [\d.]+\) found no adapter with VK_ICD_FILENAMES\/VK_DRIVER_FILES=\/nonexistent\/nnspec_icd\.json/,
    );
  });
});
