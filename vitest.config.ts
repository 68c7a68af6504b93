import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { defineConfig } from "vitest/config";

// The class workbook in ../shared (read-only, never copied): its audited columns join the 2-2-2 conformance.
const workbook = resolve(import.meta.dirname, "../shared/fixtures/excel/class-sheet-era-v1.xlsx");

export default defineConfig({
  test: {
    include: ["**/test/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: "forks",
    env: { NNSPEC_WORKBOOK: process.env.NNSPEC_WORKBOOK ?? (existsSync(workbook) ? workbook : "") },
    reporters: ["default"],
  },
});
