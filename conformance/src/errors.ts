/**
 * Exit codes of every nnspec command (README, "When things go wrong"), defined once:
 *   0 ok · 1 a check, the audit or a training run found a fault · 2 bad usage or input · 3 incomplete (timeout, crash, interruption).
 */
export const EXIT = { ok: 0, fault: 1, usage: 2, incomplete: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A user mistake (bad path, unknown backend, bad option): the CLI prints the message without a stack trace, exit 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** The command ran and found a fault (e.g. training diverged): one line, exit 1. */
export class FaultError extends Error {
  override name = "FaultError";
}

/** The command could not finish (interrupted, timed out, a worker crashed); what was done is on disk: exit 3. */
export class IncompleteError extends Error {
  override name = "IncompleteError";
}

/** One line for any thrown value: `throw undefined`, strings and objects without a message included. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (err === undefined || err === null) return `${String(err)} was thrown (no error object)`;
  if (typeof err === "string") return err;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}
