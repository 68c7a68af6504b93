#!/usr/bin/env node
// Run before `pnpm test`: without a Debian package the suite needs, stop with one line naming it and the command
// that installs it (exit 2), rather than a long vitest stack trace from deep inside a browser or PyTorch test.
import { PREREQUISITES } from "./prerequisites.mjs";

const missing = PREREQUISITES.filter((p) => !p.present());
if (process.argv.includes("--list")) {
  console.log(PREREQUISITES.map((p) => p.pkg).join(" "));
} else if (missing.length > 0) {
  const names = missing.map((p) => p.pkg).join(" ");
  console.error(
    `error: missing Debian package${missing.length > 1 ? "s" : ""} ${names} (${missing.map((p) => p.why).join("; ")}): run \`bash scripts/setup.sh\` or \`apt-get install -y ${names}\``,
  );
  process.exit(2);
}
