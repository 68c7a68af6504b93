import { UsageError } from "../errors.ts";
import type { ProcessSpec } from "./client.ts";

/** A `cmd:` backend's program: run directly (argv), or through /bin/sh when the line uses shell syntax. */
export interface CommandLine {
  readonly command: string;
  readonly args: readonly string[];
  /** Leading NAME=value words, added to the environment. */
  readonly env: Readonly<Record<string, string>>;
  /** The line as given, for messages. */
  readonly text: string;
}

export const CMD_PREFIX = "cmd:";

export function isCommandSpecifier(specifier: string): boolean {
  return specifier.startsWith(CMD_PREFIX);
}

// Unquoted, these need a shell (pipes, redirections, lists, substitutions, globs, ~): the line is then given to sh.
const SHELL_SYNTAX = new Set(["|", "&", ";", "<", ">", "(", ")", "$", "`", "*", "?", "[", "~", "#", "{", "}"]);
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

/**
 * Split a command line into words as a POSIX shell would for plain words: blanks separate, '…' is literal, "…"
 * keeps \" \\ \$ \` escapes, a backslash outside quotes escapes the next character. Returns null when an unquoted
 * character needs a real shell (the caller then runs `sh -c`), so nothing is ever half-interpreted.
 */
export function splitCommandLine(line: string): string[] | null {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === " " || c === "\t" || c === "\n") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new UsageError(`cmd: unterminated ' in ${JSON.stringify(line)}`);
      word += line.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      inWord = true;
      for (i++; ; i++) {
        if (i >= line.length) throw new UsageError(`cmd: unterminated " in ${JSON.stringify(line)}`);
        const d = line[i]!;
        if (d === '"') break;
        if (d === "$" || d === "`") return null; // substitution inside double quotes: a shell's job
        if (d === "\\" && i + 1 < line.length && '"\\$`\n'.includes(line[i + 1]!)) word += line[++i];
        else word += d;
      }
    } else if (c === "\\") {
      if (i + 1 >= line.length)
        throw new UsageError(`cmd: the line ends with a lone backslash: ${JSON.stringify(line)}`);
      word += line[++i];
      inWord = true;
    } else if (SHELL_SYNTAX.has(c) && !(c === "~" && inWord) && !(c === "#" && inWord)) {
      return null;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** Parse the text after `cmd:`. */
export function parseCommandLine(specifier: string): CommandLine {
  const text = specifier.slice(isCommandSpecifier(specifier) ? CMD_PREFIX.length : 0).trim();
  if (text === "") throw new UsageError(`--backend "cmd:" needs a command line, e.g. "cmd:python3 my_backend.py"`);
  const words = splitCommandLine(text);
  if (words === null) return { command: "/bin/sh", args: ["-c", text], env: {}, text };
  const env: Record<string, string> = {};
  while (words.length > 0 && ASSIGNMENT.test(words[0]!)) {
    const w = words.shift()!;
    const eq = w.indexOf("=");
    env[w.slice(0, eq)] = w.slice(eq + 1);
  }
  if (words.length === 0) throw new UsageError(`cmd: ${JSON.stringify(text)} sets variables but names no program`);
  return { command: words[0]!, args: words.slice(1), env, text };
}

/** The program of a `cmd:` backend. */
export function commandProcess(specifier: string): ProcessSpec {
  const line = parseCommandLine(specifier);
  return { command: line.command, args: line.args, env: line.env, label: `backend "cmd:${line.text}"` };
}
