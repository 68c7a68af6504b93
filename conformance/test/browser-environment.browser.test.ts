import { describe, expect, it } from "vitest";

/**
 * What browser backends can count on in the vitest "browser" project (headless Chromium, SwiftShader): a WebGL2
 * context that renders float32 results exactly enough to read back, and SharedArrayBuffer (cross-origin isolated).
 */
describe("browser project environment", () => {
  it("is cross-origin isolated, so SharedArrayBuffer exists", () => {
    expect(globalThis.crossOriginIsolated).toBe(true);
    const shared = new Float64Array(new SharedArrayBuffer(16));
    shared[1] = Math.PI;
    expect(shared[1]).toBe(Math.PI);
  });

  it("creates a WebGL2 context and renders float32 values into an RGBA32F texture", () => {
    const canvas = document.createElement("canvas");
    const gl = canvas.getContext("webgl2");
    expect(gl, "no WebGL2 context: check the Chromium flags in vitest.config.ts").not.toBeNull();
    if (!gl) return;
    const info = gl.getExtension("WEBGL_debug_renderer_info");
    const renderer = info
      ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL))
      : String(gl.getParameter(gl.RENDERER));
    const floatTargets = gl.getExtension("EXT_color_buffer_float") !== null;
    console.log(
      `WebGL2 renderer: ${renderer}; version: ${String(gl.getParameter(gl.VERSION))}; EXT_color_buffer_float: ${floatTargets ? "yes" : "no"}; MAX_TEXTURE_SIZE ${String(gl.getParameter(gl.MAX_TEXTURE_SIZE))}`,
    );
    expect(renderer.length).toBeGreaterThan(0);
    expect(floatTargets, "tfjs-webgl needs float render targets").toBe(true);

    // 4×2 pixels, each writes (x·0.1 + 1/3, y·0.1 − 1/7, x·y, 1e-3) computed on the GPU in highp float.
    const W = 4,
      H = 2;
    const compile = (type: number, src: string) => {
      const s = gl.createShader(type)!;
      gl.shaderSource(s, src);
      gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS))
        throw new Error(gl.getShaderInfoLog(s) ?? "shader compile failed");
      return s;
    };
    const prog = gl.createProgram()!;
    gl.attachShader(
      prog,
      compile(
        gl.VERTEX_SHADER,
        `#version 300 es
      in vec2 p; void main() { gl_Position = vec4(p, 0.0, 1.0); }`,
      ),
    );
    gl.attachShader(
      prog,
      compile(
        gl.FRAGMENT_SHADER,
        `#version 300 es
      precision highp float; out vec4 o;
      void main() { vec2 c = floor(gl_FragCoord.xy); o = vec4(c.x * 0.1 + 1.0 / 3.0, c.y * 0.1 - 1.0 / 7.0, c.x * c.y, 1e-3); }`,
      ),
    );
    gl.linkProgram(prog);
    expect(gl.getProgramParameter(prog, gl.LINK_STATUS), gl.getProgramInfoLog(prog) ?? "").toBe(true);
    const tex = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, tex);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA32F, W, H, 0, gl.RGBA, gl.FLOAT, null);
    const fb = gl.createFramebuffer();
    gl.bindFramebuffer(gl.FRAMEBUFFER, fb);
    gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, tex, 0);
    expect(gl.checkFramebufferStatus(gl.FRAMEBUFFER)).toBe(gl.FRAMEBUFFER_COMPLETE);
    const buf = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buf);
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 3, -1, -1, 3]), gl.STATIC_DRAW);
    const loc = gl.getAttribLocation(prog, "p");
    gl.enableVertexAttribArray(loc);
    gl.vertexAttribPointer(loc, 2, gl.FLOAT, false, 0, 0);
    gl.useProgram(prog);
    gl.viewport(0, 0, W, H);
    gl.drawArrays(gl.TRIANGLES, 0, 3);
    const out = new Float32Array(W * H * 4);
    gl.readPixels(0, 0, W, H, gl.RGBA, gl.FLOAT, out);
    let worst = 0;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const want = [x * 0.1 + 1 / 3, y * 0.1 - 1 / 7, x * y, 1e-3];
        want.forEach((v, k) => {
          worst = Math.max(worst, Math.abs(out[(y * W + x) * 4 + k]! - v) / Math.max(1, Math.abs(v)));
        });
      }
    // float32 arithmetic on the GPU: a few ulps, far from half-float (1e-3) or 8-bit (4e-3) targets.
    expect(worst).toBeLessThan(1e-6);
    gl.getExtension("WEBGL_lose_context")?.loseContext();
  });
});
