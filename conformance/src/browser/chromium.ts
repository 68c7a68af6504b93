/// <reference types="@vitest/browser/providers/playwright" />
import type { BrowserCommand } from "vitest/node";
import { CHROMIUM_FLAGS } from "./flags.ts";

export { CHROMIUM_FLAGS };

// Debian's Chromium (never a Playwright download), with the flags `nnspec conformance --browser` uses too (flags.ts).
export const CHROMIUM = process.env.NNSPEC_CHROMIUM ?? "/usr/bin/chromium";

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
