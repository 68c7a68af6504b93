import type { Check } from "@nnspec/conformance";

/**
 * The check group of a check, for kill matrices and false-alarm tables: the family and the part of the suite,
 * e.g. "net222.gradients", "cnn.backward", "cnn.step". Ids are `<family>.<case>.<part>…`; the case name (the golden
 * file's name, which may hold dots, as in lr-0.1) comes from the check's source file.
 */
export function checkGroup(c: Pick<Check, "id" | "source">): string {
  const family = c.id.slice(0, c.id.indexOf("."));
  const caseName = (c.source.split(/[\\/]/).pop() ?? "").replace(/\.json$/, "");
  const prefix = `${family}.${caseName}.`;
  const rest = c.id.startsWith(prefix) ? c.id.slice(prefix.length) : c.id.slice(family.length + 1);
  return `${family}.${rest.split(".")[0]}`;
}

/** Checks grouped by checkGroup, groups and checks in suite order. */
export function groupChecks<T extends Pick<Check, "id" | "source">>(checks: readonly T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const c of checks) {
    const g = checkGroup(c);
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push(c);
  }
  return groups;
}
