import { Command } from "commander";
import { registerConformance } from "./commands/conformance.ts";
import { registerNewBackend } from "./commands/new-backend.ts";
import { runMain } from "./run-main.ts";

// The published `nnspec`: the commands a backend author needs.
const program = new Command("nnspec")
  .description("nnspec conformance suite: judge a neural-network backend against the golden cases")
  .showHelpAfterError();
registerConformance(program);
registerNewBackend(program);
await runMain(program);
