import { CommanderError, type Command } from "commander";
import pc from "picocolors";
import { SpecValidationError } from "@nnspec/spec";
import { EXIT, FaultError, IncompleteError, UsageError, errorMessage, type ExitCode } from "../errors.ts";

export { EXIT, FaultError, IncompleteError, UsageError };

const debug = () => process.env.NNSPEC_DEBUG === "1";

/** Stack traces are for debugging sessions only (NNSPEC_DEBUG=1); users get one line. */
function printStack(err: unknown): void {
  if (!debug()) return;
  // The error and what caused it (a wrapped backend error keeps the backend's own stack as its cause).
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e.stack) console.error(pc.dim(depth === 0 ? e.stack : `caused by: ${e.stack}`));
  }
}

/** The exit code of an error that reached the top, after printing it as one line. */
export function reportError(err: unknown): ExitCode {
  if (err instanceof CommanderError) {
    // Commander has printed its message; --help and --version end with 0, every usage mistake with 2.
    return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  const known: Array<[new (...a: never[]) => Error, ExitCode]> = [
    [UsageError, EXIT.usage],
    [SpecValidationError, EXIT.usage],
    [FaultError, EXIT.fault],
    [IncompleteError, EXIT.incomplete],
  ];
  const match = known.find(([k]) => err instanceof k);
  if (match) {
    console.error(pc.red(`error: ${errorMessage(err)}`));
    printStack(err);
    return match[1];
  }
  // Not an error we anticipated: still one line, and the run counts as incomplete (it crashed).
  const name = err instanceof Error && err.name !== "Error" ? `${err.name}: ` : "";
  console.error(pc.red(`error: ${name}${errorMessage(err)}`));
  if (debug()) printStack(err);
  else console.error(pc.dim("(unexpected error; set NNSPEC_DEBUG=1 for the stack)"));
  return EXIT.incomplete;
}

/** Commander copies exitOverride only to commands created after it: apply it to the whole tree. */
function overrideExits(cmd: Command): void {
  cmd.exitOverride();
  for (const sub of cmd.commands) overrideExits(sub);
}

// --- SIGINT / SIGTERM -----------------------------------------------------------------------------------------

let graceful: ((signal: NodeJS.Signals) => void) | null = null;
const cleanups = new Set<() => void>();
let interrupted = false;

/**
 * A command that can stop cleanly (finish the batch, write what it has) takes the first SIGINT/SIGTERM itself;
 * it must then end with exit 3. Returns the function that gives the default back.
 */
export function handleInterrupts(onSignal: (signal: NodeJS.Signals) => void): () => void {
  graceful = onSignal;
  return () => {
    if (graceful === onSignal) graceful = null;
  };
}

/** Run `fn` (synchronous: kill a child, remove a temporary folder) if the process is stopped by a signal or crash. */
export function cleanupOnExit(fn: () => void): () => void {
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

function runCleanups(): void {
  for (const fn of cleanups) {
    try {
      fn();
    } catch {
      // Best effort: the process is going down anyway.
    }
  }
  cleanups.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  if (graceful && !interrupted) {
    interrupted = true;
    graceful(signal);
    return;
  }
  runCleanups();
  console.error(
    pc.red(
      interrupted
        ? `\n${signal} again: stopping now; what was written before is kept`
        : `\ninterrupted by ${signal}: stopped before finishing`,
    ),
  );
  process.exit(EXIT.incomplete);
}

function onCrash(err: unknown): void {
  runCleanups();
  reportError(err);
  process.exit(EXIT.incomplete);
}

/** Run the program: one exit code per outcome (errors.ts EXIT), one line per error, stacks only with NNSPEC_DEBUG=1. */
export async function runMain(program: Command): Promise<void> {
  overrideExits(program);
  // Installed for the command's run only (a test may call runMain in its own process).
  const handlers = [
    ["SIGINT", onSignal],
    ["SIGTERM", onSignal],
    ["uncaughtException", onCrash],
    ["unhandledRejection", onCrash],
  ] as const;
  for (const [event, fn] of handlers) process.on(event, fn);
  interrupted = false;
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    process.exitCode = reportError(err);
  } finally {
    for (const [event, fn] of handlers) process.off(event, fn);
    graceful = null;
  }
}
