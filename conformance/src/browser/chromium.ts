/// <reference types="@vitest/browser/providers/playwright" />
import type { BrowserCommand } from "vitest/node";

// Debian's Chromium (never a Playwright download), headless, no network side-traffic; SwiftShader gives
// browser backends a software WebGL2 context on machines without a GPU or display (CI: 2 cores, headless).
export const CHROMIUM = process.env.NNSPEC_CHROMIUM ?? "/usr/bin/chromium";
export const CHROMIUM_FLAGS: readonly string[] = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
  "--disable-sync", "--no-first-run", "--disable-quic", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
];

/** vitest `test.browser` settings shared by the conformance and bench projects: one headless Chromium page at a time. */
export function chromiumBrowser(commands: Record<string, BrowserCommand<never[]>>) {
  return {
    enabled: true,
    provider: "playwright" as const,
    headless: true,
    // One page at a time: SwiftShader and the CNN are CPU-bound on a 2-core CI machine.
    fileParallelism: false,
    screenshotFailures: false,
    commands,
    instances: [{ browser: "chromium" as const, launch: { executablePath: CHROMIUM, args: [...CHROMIUM_FLAGS] } }],
  };
}
