import * as tf from "@tensorflow/tfjs";
// Registers the "webgl" backend factory (also pulled in by @tensorflow/tfjs; imported here to say so).
import "@tensorflow/tfjs-backend-webgl";
import type { MathBackendWebGL } from "@tensorflow/tfjs-backend-webgl";

/**
 * Starting tfjs on its WebGL backend in a browser page, and finding out what it really runs on: the WebGL
 * version, the GPU (or software rasteriser) behind it, and whether tensors live in float32 or float16 textures.
 * It never falls back to another tfjs backend: if WebGL cannot be had, it throws.
 */
export interface WebglRuntime {
  /** 1 or 2 (tfjs prefers WebGL2). */
  readonly webglVersion: number;
  /** UNMASKED_RENDERER_WEBGL where the browser exposes it, else RENDERER. */
  readonly renderer: string;
  /** tfjs renders into float32 textures (WEBGL_RENDER_FLOAT32_ENABLED); false means float16 textures. */
  readonly float32Textures: boolean;
  /** For the manifest, e.g. "tfjs 4.22.0 webgl, WebGL 2, ANGLE (...SwiftShader...), float32 textures". */
  readonly device: string;
}

export class WebglUnavailableError extends Error {
  override name = "WebglUnavailableError";
}

/** The renderer string of a WebGL context: the unmasked one where the browser exposes the debug extension. */
export function rendererOf(gl: WebGLRenderingContext | WebGL2RenderingContext): string {
  const info = gl.getExtension("WEBGL_debug_renderer_info");
  return String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
}

/** What a fresh canvas says about WebGL here, for the error message when tfjs cannot start on it. */
function probeRenderer(): string {
  if (typeof document === "undefined" && typeof OffscreenCanvas === "undefined")
    return "no canvas here (not a browser page)";
  try {
    const canvas =
      typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(1, 1) : document.createElement("canvas");
    const gl2 = canvas.getContext("webgl2") as WebGL2RenderingContext | null;
    if (gl2) return `WebGL2 context available, renderer ${rendererOf(gl2)}`;
    const gl1 = canvas.getContext("webgl") as WebGLRenderingContext | null;
    if (gl1) return `only WebGL1, renderer ${rendererOf(gl1)}`;
    return "no WebGL context could be created";
  } catch (e) {
    return `creating a WebGL context threw: ${e instanceof Error ? e.message : String(e)}`;
  }
}

// Duck-typed rather than instanceof: a bundler may hand this module and tfjs different copies of the class.
function isWebglBackend(b: tf.KernelBackend | null): b is MathBackendWebGL {
  return b !== null && typeof (b as Partial<MathBackendWebGL>).gpgpu?.gl?.getParameter === "function";
}

let started: WebglRuntime | null = null;

/**
 * Make tfjs's WebGL backend the active one (once per page). Two flags are set first:
 *  - SOFTWARE_WEBGL_ENABLED: tfjs otherwise asks for failIfMajorPerformanceCaveat and refuses software
 *    rasterisers such as SwiftShader, the only WebGL a headless CI machine has; the renderer is reported instead.
 *  - WEBGL_CPU_FORWARD off: tfjs would run small kernels (≤128 elements, e.g. all of the 2-2-2 network) on its
 *    CPU backend; this backend's results must come from WebGL.
 */
export async function startWebgl(): Promise<WebglRuntime> {
  if (started) {
    if (tf.getBackend() !== "webgl" && !(await tf.setBackend("webgl")))
      throw new WebglUnavailableError("tfjs webgl backend: could not switch back to webgl");
    return started;
  }
  const refuse = (why: string) =>
    new WebglUnavailableError(
      `tfjs webgl backend: ${why}, and this backend never falls back to cpu (${probeRenderer()})`,
    );
  // tfjs-backend-webgl registers its factory only where device_util.isBrowser() holds.
  if (!tf.findBackendFactory("webgl")) throw refuse("tfjs registered no webgl backend here (not a browser page)");
  tf.env().set("SOFTWARE_WEBGL_ENABLED", true);
  tf.env().set("WEBGL_CPU_FORWARD", false);
  const ok = await tf.setBackend("webgl").catch(() => false);
  const backend = ok ? tf.findBackend("webgl") : null;
  if (!ok || tf.getBackend() !== "webgl" || !isWebglBackend(backend)) throw refuse("no WebGL context could be had");
  const webglVersion = tf.env().getNumber("WEBGL_VERSION");
  const float32Textures = tf.env().getBool("WEBGL_RENDER_FLOAT32_ENABLED");
  const renderer = rendererOf(backend.gpgpu.gl);
  started = {
    webglVersion,
    renderer,
    float32Textures,
    device: `tfjs ${tf.version.tfjs} webgl, WebGL ${webglVersion}, ${renderer}, ${float32Textures ? "float32" : "float16"} textures`,
  };
  return started;
}
