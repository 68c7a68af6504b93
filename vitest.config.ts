/// <reference types="@vitest/browser/providers/playwright" />
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { defineConfig } from "vitest/config";
import { browserFixtureCommands } from "./conformance/src/browser/commands.ts";
import { benchBrowserProjects } from "./tools/src/browser/bench-project.ts";
import { chromiumBrowser } from "./conformance/src/browser/chromium.ts";

// The class workbook in ../shared (read-only, never copied): its audited columns join the 2-2-2 conformance.
const workbook = resolve(import.meta.dirname, "../shared/fixtures/excel/class-sheet-era-v1.xlsx");
// The real MNIST files in ../shared (read-only, checksum-verified by the loader), unless $MNIST_DIR names others.
const mnist = resolve(import.meta.dirname, "../shared/data/mnist");

/** Browser test files: the same conformance suite, run in headless Chromium (see conformance/README.md). */
const BROWSER_TESTS = "**/test/**/*.browser.test.ts";

export default defineConfig({
  // Cross-origin isolation for the browser project's pages (vitest applies server.headers to its own pages too; the
  // browser server reads them from this root level): SharedArrayBuffer for the reference CNN's activations and for
  // threaded wasm backends. The Node project serves nothing, so this is inert there.
  server: { headers: { "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" } },
  test: {
    exclude: ["**/node_modules/**", "**/dist/**"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    env: {
      NNSPEC_WORKBOOK: process.env.NNSPEC_WORKBOOK ?? (existsSync(workbook) ? workbook : ""),
      MNIST_DIR: process.env.MNIST_DIR ?? (existsSync(mnist) ? mnist : ""),
    },
    // CI's machine-readable tally (.ci/run): `pnpm test` cannot pass --reporter through pnpm 12, which claims that flag.
    reporters: process.env.NNSPEC_VITEST_JSON
      ? ["default", ["json", { outputFile: process.env.NNSPEC_VITEST_JSON }]]
      : ["default"],
    projects: [
      {
        extends: true,
        test: {
          name: "node",
          include: ["**/test/**/*.test.ts"],
          exclude: ["**/node_modules/**", "**/dist/**", BROWSER_TESTS],
          pool: "forks",
        },
      },
      {
        extends: true,
        // Pre-bundle the browser backends' libraries so Vite never reloads a page mid-run on a cold cache.
        optimizeDeps: { include: ["gpu.js"] },
        test: {
          name: "browser",
          include: [BROWSER_TESTS],
          browser: chromiumBrowser(browserFixtureCommands(import.meta.dirname)),
        },
      },
      // `nnspec bench`'s in-page runs: present only while $NNSPEC_BENCH_JOB names a job (see tools/src/bench/browser.ts).
      ...benchBrowserProjects({ root: import.meta.dirname }),
    ],
  },
});
