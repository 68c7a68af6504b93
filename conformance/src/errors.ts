/** A user mistake (bad path, unknown backend, bad option): the CLI prints the message without a stack trace. */
export class UsageError extends Error {
  override name = "UsageError";
}
