import { readFile } from "node:fs/promises";
import { recipeName } from "@nnspec/spec";
import { UsageError } from "@nnspec/conformance";
import { runRecordSchema, type RunRecord } from "../train/run-record.ts";

/** One run.json, validated, with the labels `nnspec compare` groups and draws it by. */
export interface LoadedRun {
  readonly path: string;
  readonly record: RunRecord;
  /** "reference (float32)", "pytorch (float32)". */
  readonly backend: string;
  /** The recipe's name (spec recipeName: its own, else the named recipe it equals, else "custom"). */
  readonly recipe: string;
  /** Unique per run: "<backend> · <recipe> · seed N" (#2, #3… for repeats). */
  readonly label: string;
}

const where = (path: readonly (string | number)[]) =>
  path.length
    ? path
        .map((p) => (typeof p === "number" ? `[${p}]` : `.${p}`))
        .join("")
        .replace(/^\./, "")
    : "(root)";

/** Read and validate one run record; every failure is one line naming the file (and the field). */
export async function loadRunRecord(path: string): Promise<RunRecord> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(
      `${path}: ${e.code === "ENOENT" ? "no such file" : e.code === "EISDIR" ? "is a folder, not a run.json" : e.message}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path}: not JSON (${(err as Error).message})`);
  }
  const r = runRecordSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more)` : "";
    throw new UsageError(`${path}: field ${where(issue.path)}: ${issue.message}${more}`);
  }
  return r.data;
}

/** Load every file (all are checked; the errors of all bad files come back together, one line). */
export async function loadRunRecords(paths: readonly string[]): Promise<LoadedRun[]> {
  if (paths.length === 0) throw new UsageError("nnspec compare: name at least one run.json");
  const settled = await Promise.allSettled(paths.map(loadRunRecord));
  const errors = settled.flatMap((s) => (s.status === "rejected" ? [(s.reason as Error).message] : []));
  if (errors.length) throw new UsageError(errors.join("; "));
  const seen = new Map<string, number>();
  return settled.map((s, i) => {
    const record = (s as PromiseFulfilledResult<RunRecord>).value;
    const backend = `${record.backend.name} (${record.backend.precision})`;
    const recipe = recipeName(record.recipe);
    const base = `${backend} · ${recipe} · seed ${record.seed}`;
    const k = (seen.get(base) ?? 0) + 1;
    seen.set(base, k);
    return { path: paths[i]!, record, backend, recipe, label: k > 1 ? `${base} #${k}` : base };
  });
}
