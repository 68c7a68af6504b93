#!/usr/bin/env node
// This repository's `nnspec`: the judge's commands plus the tools'. TypeScript run through tsx, no build step.
import { register } from "tsx/esm/api";
register();
await import("../src/cli/main.ts");
