import type { Command } from "commander";

// Placeholder: filled in by the bench work.
export function registerBench(_program: Command): void {}
