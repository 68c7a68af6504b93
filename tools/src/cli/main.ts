import { Command } from "commander";
import { registerConformance, registerNewBackend, runMain } from "@nnspec/conformance/cli";
import { WORKSPACE_BACKENDS, WORKSPACE_RUNS } from "../workspace-backends.ts";
import { registerSheet } from "./commands/sheet.ts";
import { registerSweep } from "./commands/sweep.ts";
import { registerSummary } from "./commands/summary.ts";
import { registerTrain } from "./commands/train.ts";
import { registerStart } from "./commands/start.ts";
import { registerBench } from "./commands/bench.ts";
import { registerMutants } from "../mutants/command.ts";
import { registerCalibrate } from "../calibrate/command.ts";
import { registerCompare } from "./commands/compare.ts";
import { registerAugmentPreview } from "./commands/augment-preview.ts";

// The judge's commands (with this workspace's short backend names and --all) beside the tools'.
const program = new Command("nnspec")
  .description("Golden conformance suite and interchangeable neural-network backends")
  .showHelpAfterError();
registerStart(program);
registerConformance(program, { aliases: WORKSPACE_BACKENDS, allRuns: WORKSPACE_RUNS });
for (const register of [
  registerSweep,
  registerSheet,
  registerSummary,
  registerTrain,
  registerBench,
  registerCompare,
  registerAugmentPreview,
])
  register(program);
registerMutants(program);
registerCalibrate(program);
registerNewBackend(program);
await runMain(program);
