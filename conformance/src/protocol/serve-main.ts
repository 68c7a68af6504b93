// The child process of an isolated conformance run: loads a JS/TS backend (package name or path, as `loadBackend`)
// and serves it over the pipe protocol on stdin/stdout. Started by hosts.ts as
//   node [--import tsx] serve-main.(ts|js) '{"backend": "...", "aliases": {...}}'
// A crash, process.exit() or a hang in the backend ends or stalls this process only; the judge reports it.
import { z } from "zod";
import { parseWith } from "@nnspec/spec";
import { errorMessage } from "../errors.ts";
import { loadBackend } from "../load-backend.ts";
import { serveBackend } from "./server.ts";

const argsSchema = z.object({ backend: z.string().min(1), aliases: z.record(z.string()).optional() }).strict();

// stdout is the protocol channel. Whatever the backend prints (console.log, a library's banner) goes to stderr.
const out = process.stdout;
const writeOut = out.write.bind(out);
process.stdout.write = process.stderr.write.bind(process.stderr) as typeof process.stdout.write;

try {
  const args = parseWith(
    argsSchema,
    JSON.parse(process.argv[2] ?? "null") as unknown,
    "nnspec backend server arguments",
  );
  await serveBackend({ input: process.stdin, write: (chunk) => void writeOut(chunk) }, (options) =>
    loadBackend(args.backend, options, args.aliases ? { aliases: args.aliases } : {}),
  );
  // The judge closed stdin: done, whatever the backend left running (timers, workers).
  process.exit(0);
} catch (err) {
  console.error(`nnspec backend server: ${errorMessage(err)}`);
  process.exit(70);
}
