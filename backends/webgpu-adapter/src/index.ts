/// <reference types="@webgpu/types" />
/**
 * Finding a WebGPU adapter for the nnspec WebGPU backends, in a browser page or in Node, and saying what it is.
 * A library shared by @nnspec/backend-tfjs-webgpu and @nnspec/backend-webgpu (backends never import each other).
 *
 * - Browser: `navigator.gpu`. Chromium exposes it only when launched with `--enable-unsafe-webgpu` (on Linux), and
 *   only in a secure context (http://localhost, https:); `--disable-software-rasterizer` removes the SwiftShader
 *   adapter a machine without a GPU relies on.
 * - Node: Dawn from the `webgpu` npm package. Its `create([])` becomes `navigator.gpu` and its `globals`
 *   (GPUBufferUsage, GPUMapMode, …) become globals. The Vulkan drivers the system lists are tried first; when they give
 *   no adapter and `VK_ICD_FILENAMES` is not set, the loader is pointed at the SwiftShader ICD that Chromium installs
 *   beside its libraries (Debian: /usr/lib/chromium/vk_swiftshader_icd.json) and Dawn is asked again.
 *
 * It never degrades silently: when no adapter can be had it throws a WebGpuUnavailableError that names the missing
 * flag or ICD file.
 */

export class WebGpuUnavailableError extends Error {
  override name = "WebGpuUnavailableError";
}

/** What an adapter says about itself (GPUAdapterInfo, plus the fallback flag wherever the browser keeps it). */
export interface AdapterDescription {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  /** A fallback adapter (WebGPU's term): a software implementation such as SwiftShader, running on the CPU. */
  readonly isFallbackAdapter: boolean;
}

export interface AcquiredAdapter {
  readonly adapter: GPUAdapter;
  readonly info: AdapterDescription;
  /** Where it was found: Chromium's (or another browser's) navigator.gpu, or Dawn in Node. */
  readonly environment: "browser" | "node";
  /** "Chromium navigator.gpu" or "Dawn (webgpu 0.6.2), Vulkan ICD /usr/lib/chromium/vk_swiftshader_icd.json". */
  readonly via: string;
  /**
   * One line for a manifest's `device`: vendor, architecture, description, and plainly whether it is a CPU fallback,
   * e.g. "WebGPU google/swiftshader (SwiftShader driver 5.0.0), CPU fallback adapter, via Dawn …".
   */
  readonly label: string;
}

/** True under Node; false in a browser page. */
export const IN_NODE = typeof process !== "undefined" && typeof process.versions?.node === "string";

/** Where Chromium packages put their SwiftShader Vulkan ICD (beside the browser's own libraries). */
export const SWIFTSHADER_ICD_CANDIDATES: readonly string[] = [
  "/usr/lib/chromium/vk_swiftshader_icd.json", // Debian, Ubuntu's deb
  "/usr/lib64/chromium-browser/vk_swiftshader_icd.json", // Fedora
  "/usr/lib/chromium-browser/vk_swiftshader_icd.json",
  "/opt/google/chrome/vk_swiftshader_icd.json", // Google Chrome
  "/snap/chromium/current/usr/lib/chromium-browser/vk_swiftshader_icd.json",
];

/** The npm package with Dawn for Node (written and tested against webgpu 0.6.2; 0.3 to 0.6 load on glibc 2.36). */
export const DAWN_PACKAGE = "webgpu";

export function describeInfo(adapter: GPUAdapter): AdapterDescription {
  const info = (adapter as { info?: GPUAdapterInfo }).info;
  const s = (v: unknown) => (typeof v === "string" ? v : "");
  const fallback =
    (info as { isFallbackAdapter?: unknown } | undefined)?.isFallbackAdapter ??
    (adapter as { isFallbackAdapter?: unknown }).isFallbackAdapter;
  return {
    vendor: s(info?.vendor),
    architecture: s(info?.architecture),
    device: s(info?.device),
    description: s(info?.description),
    isFallbackAdapter: fallback === true,
  };
}

/** "google/swiftshader (SwiftShader driver 5.0.0), CPU fallback adapter" — what the manifest and the bench row show. */
export function adapterLabel(d: AdapterDescription): string {
  const name = [d.vendor || "unknown vendor", d.architecture || "unknown architecture"].join("/");
  const detail = d.description || d.device;
  const kind = d.isFallbackAdapter ? "CPU fallback adapter (software, not a GPU)" : "hardware adapter";
  return `${name}${detail ? ` (${detail})` : ""}, ${kind}`;
}

/** The secure-context and flag advice for a page without navigator.gpu or without an adapter. */
function browserAdvice(): string {
  const secure = typeof isSecureContext === "boolean" ? isSecureContext : true;
  const where = typeof location !== "undefined" ? location.origin : "this page";
  return secure
    ? "launch Chromium with --enable-unsafe-webgpu (Linux), and without --disable-software-rasterizer on a machine without a GPU (SwiftShader is the adapter there)"
    : `${where} is not a secure context (WebGPU needs http://localhost or https:); also launch Chromium with --enable-unsafe-webgpu (Linux)`;
}

async function browserAdapter(options: GPURequestAdapterOptions): Promise<AcquiredAdapter> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new WebGpuUnavailableError(`WebGPU: navigator.gpu is missing in this page: ${browserAdvice()}`);
  const adapter = await gpu.requestAdapter(options);
  if (!adapter)
    throw new WebGpuUnavailableError(`WebGPU: navigator.gpu.requestAdapter() gave no adapter: ${browserAdvice()}`);
  const info = describeInfo(adapter);
  const via = "navigator.gpu in the page";
  return { adapter, info, environment: "browser", via, label: `WebGPU ${adapterLabel(info)}, ${via}` };
}

// --- Node ---

interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

/** The Dawn instance and what was done to get it, kept for the process (one instance serves every backend). */
interface NodeGpu {
  readonly gpu: GPU;
  readonly adapter: GPUAdapter;
  readonly via: string;
}
let nodeGpu: Promise<NodeGpu> | null = null;

async function loadDawn(): Promise<{ dawn: DawnModule; version: string }> {
  // A variable specifier: bundlers for the browser must not follow it (the package is Node-only, native).
  const name = DAWN_PACKAGE;
  let dawn: DawnModule;
  try {
    dawn = (await import(/* @vite-ignore */ name)) as DawnModule;
  } catch (e) {
    throw new WebGpuUnavailableError(
      `WebGPU in Node: the "${name}" npm package (Dawn) could not be loaded: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  let version = "?";
  try {
    const { createRequire } = await import("node:module");
    const require = createRequire(import.meta.url);
    const { readFileSync } = await import("node:fs");
    const { dirname, join } = await import("node:path");
    const main = require.resolve(name);
    version =
      (JSON.parse(readFileSync(join(dirname(main), "package.json"), "utf8")) as { version?: string }).version ?? "?";
  } catch {
    // The version is only for the label.
  }
  return { dawn, version };
}

/** The SwiftShader ICD beside Chromium's libraries, or null. `NNSPEC_SWIFTSHADER_ICD` names another file. */
export async function findSwiftShaderIcd(): Promise<{ found: string | null; tried: string[] }> {
  const { existsSync } = await import("node:fs");
  const tried = [
    ...(process.env.NNSPEC_SWIFTSHADER_ICD ? [process.env.NNSPEC_SWIFTSHADER_ICD] : []),
    ...SWIFTSHADER_ICD_CANDIDATES,
  ];
  return { found: tried.find((p) => existsSync(p)) ?? null, tried };
}

/** Where Linux distributions keep the Vulkan loader Dawn opens (libvulkan.so.1; Debian package libvulkan1). */
const VULKAN_LOADER_DIRS = [
  "/usr/lib/x86_64-linux-gnu",
  "/lib/x86_64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu",
  "/usr/lib64",
  "/usr/lib",
  "/lib64",
  "/lib",
];

/** " (… no Vulkan loader …)" when none of the usual folders has libvulkan.so.1 (Linux only), else "". */
async function vulkanLoaderHint(): Promise<string> {
  if (process.platform !== "linux") return "";
  const { existsSync } = await import("node:fs");
  if (VULKAN_LOADER_DIRS.some((d) => existsSync(`${d}/libvulkan.so.1`))) return "";
  return `; and no Vulkan loader was found (libvulkan.so.1 in ${VULKAN_LOADER_DIRS.join(", ")}; Debian: apt-get install libvulkan1)`;
}

async function startNodeGpu(options: GPURequestAdapterOptions): Promise<NodeGpu> {
  const { dawn, version } = await loadDawn();
  // GPUBufferUsage, GPUMapMode, GPUShaderStage, … as in a browser (only where not already defined).
  for (const [k, v] of Object.entries(dawn.globals))
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  const dawnName = `Dawn (${DAWN_PACKAGE} ${version})`;
  const preset = process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES;
  // 1. The Vulkan drivers the system lists (a real GPU), or the ICD the caller chose.
  let gpu = dawn.create([]);
  let adapter = await gpu.requestAdapter(options);
  if (adapter)
    return {
      gpu,
      adapter,
      via: preset ? `${dawnName}, Vulkan ICD ${preset}` : `${dawnName}, the system's Vulkan drivers`,
    };
  if (preset) {
    throw new WebGpuUnavailableError(
      `WebGPU in Node: ${dawnName} found no adapter with VK_ICD_FILENAMES/VK_DRIVER_FILES=${preset}: is that ICD file present and does its library load? (Unset it to let this package use Chromium's SwiftShader ICD.)${await vulkanLoaderHint()}`,
    );
  }
  // 2. Chromium's SwiftShader: a Vulkan driver on the CPU, the adapter a machine without a GPU has.
  const { found, tried } = await findSwiftShaderIcd();
  if (!found) {
    throw new WebGpuUnavailableError(
      `WebGPU in Node: ${dawnName} found no adapter among the system's Vulkan drivers, and no SwiftShader ICD file to fall back on (looked for ${tried.join(", ")}; install Debian's chromium package, or set VK_ICD_FILENAMES to a Vulkan ICD json)${await vulkanLoaderHint()}`,
    );
  }
  process.env.VK_ICD_FILENAMES = found;
  gpu = dawn.create([]);
  adapter = await gpu.requestAdapter(options);
  if (!adapter) {
    const hint = await vulkanLoaderHint();
    throw new WebGpuUnavailableError(
      `WebGPU in Node: ${dawnName} found no adapter even with VK_ICD_FILENAMES=${found} (Chromium's SwiftShader ICD)${hint || `: does ${found.replace(/[^/]+$/, "libvk_swiftshader.so")} load?`}`,
    );
  }
  return { gpu, adapter, via: `${dawnName}, Vulkan ICD ${found} (set by this package)` };
}

/**
 * Make `navigator.gpu` exist in Node (Dawn), as a browser has it; resolves to the GPU object. In a browser page it
 * returns the page's navigator.gpu (or throws when there is none).
 */
export async function installNavigatorGpu(options: GPURequestAdapterOptions = {}): Promise<GPU> {
  if (!IN_NODE) {
    const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    if (!gpu) throw new WebGpuUnavailableError(`WebGPU: navigator.gpu is missing in this page: ${browserAdvice()}`);
    return gpu;
  }
  nodeGpu ??= startNodeGpu(options).catch((e: unknown) => {
    nodeGpu = null;
    throw e;
  });
  const { gpu } = await nodeGpu;
  const nav = (globalThis as { navigator?: object }).navigator;
  if (!nav) Object.defineProperty(globalThis, "navigator", { value: { gpu }, configurable: true, writable: true });
  else if (!(nav as { gpu?: unknown }).gpu) Object.defineProperty(nav, "gpu", { value: gpu, configurable: true });
  return gpu;
}

/**
 * A WebGPU adapter here (browser page or Node), described. Throws WebGpuUnavailableError naming what is missing.
 * In Node the first call picks the Vulkan driver (system, else Chromium's SwiftShader) for the whole process.
 */
export async function requestAdapter(options: GPURequestAdapterOptions = {}): Promise<AcquiredAdapter> {
  if (!IN_NODE) return browserAdapter(options);
  await installNavigatorGpu(options);
  const first = await nodeGpu!;
  // Each backend gets its own adapter object (an adapter hands out one device); the first one is reused once.
  let adapter: GPUAdapter | null = first.adapter;
  if (usedAdapters.has(adapter)) adapter = await first.gpu.requestAdapter(options);
  if (!adapter) throw new WebGpuUnavailableError(`WebGPU in Node: ${first.via} gave no second adapter`);
  usedAdapters.add(adapter);
  const info = describeInfo(adapter);
  return {
    adapter,
    info,
    environment: "node",
    via: first.via,
    label: `WebGPU ${adapterLabel(info)}, via ${first.via}`,
  };
}
const usedAdapters = new WeakSet<GPUAdapter>();

/**
 * A device with the adapter's own limits for what compute backends need most (workgroup storage, invocations,
 * storage buffers and their size), not WebGPU's conservative defaults.
 */
export async function requestComputeDevice(adapter: GPUAdapter, label = "nnspec"): Promise<GPUDevice> {
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    label,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
    },
  });
  return device;
}
