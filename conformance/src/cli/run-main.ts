import { CommanderError, type Command } from "commander";
import pc from "picocolors";
import { SpecValidationError } from "@nnspec/spec";
import { UsageError } from "../errors.ts";

export { UsageError };

/** Run the program; known errors become one clear message and exit code 2, never a stack trace. */
export async function runMain(program: Command): Promise<void> {
  program.exitOverride();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof SpecValidationError || err instanceof UsageError) {
      console.error(pc.red(`error: ${err.message}`));
      process.exitCode = 2;
      return;
    }
    throw err;
  }
}
