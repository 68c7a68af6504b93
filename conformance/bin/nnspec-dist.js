#!/usr/bin/env node
// The published `nnspec` command (publishConfig.bin): the compiled CLI from dist/, plain Node, no TS loader.
// In the workspace, bin/nnspec.js runs the TypeScript sources instead.
await import("../dist/cli/main.js");
