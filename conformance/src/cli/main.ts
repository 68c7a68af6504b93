import { Command } from "commander";
import { registerConformance } from "./commands/conformance.ts";
import { registerSheet } from "./commands/sheet.ts";
import { registerSweep } from "./commands/sweep.ts";
import { registerSummary } from "./commands/summary.ts";
import { registerTrain } from "./commands/train.ts";
import { registerStart } from "./commands/start.ts";
import { registerBench } from "./commands/bench.ts";
import { registerNewBackend } from "./commands/new-backend.ts";
import { runMain } from "./run-main.ts";

const program = new Command("nnspec")
  .description("Golden conformance suite and interchangeable neural-network backends")
  .showHelpAfterError();
for (const register of [registerStart, registerConformance, registerSweep, registerSheet, registerSummary, registerTrain, registerBench, registerNewBackend]) register(program);
await runMain(program);
