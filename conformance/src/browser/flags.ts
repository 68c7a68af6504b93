// Chromium settings shared by the vitest browser projects (browser/chromium.ts, loaded by vitest.config.ts) and by
// `nnspec conformance --browser` (browser-run/). Plain data: no vitest, no node: imports.

/**
 * Headless, no sandbox (containers, CI), no network side-traffic; SwiftShader gives browser backends a software
 * WebGL2 context on machines without a GPU or display (CI: 2 cores, headless). --enable-unsafe-webgpu exposes
 * navigator.gpu on Linux (SwiftShader's Vulkan, a CPU fallback adapter, where there is no GPU) to pages in a secure
 * context, such as vitest's http://localhost.
 */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
  "--use-angle=swiftshader",
  "--enable-unsafe-swiftshader",
  "--enable-unsafe-webgpu",
];

/** Where an installed Chromium or Chrome usually is (Debian/Ubuntu, Fedora, Arch, macOS); nothing is downloaded. */
export const CHROMIUM_CANDIDATES: readonly string[] = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
  "/usr/bin/google-chrome-stable",
  "/usr/bin/chrome",
  "/snap/bin/chromium",
  "/opt/google/chrome/chrome",
  "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
  "/Applications/Chromium.app/Contents/MacOS/Chromium",
];
