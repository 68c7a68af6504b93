// What `pnpm test` needs from the operating system, in one place: scripts/setup.sh installs these Debian packages,
// and scripts/check-prerequisites.mjs refuses to start the tests without them, naming the one that is missing.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

export const CHROMIUM = process.env.NNSPEC_CHROMIUM || "/usr/bin/chromium";

/** Debian package → why the tests need it → how to tell it is there. */
export const PREREQUISITES = [
  {
    pkg: "chromium",
    why: `headless Chromium for the browser tests, looked for at ${CHROMIUM}`,
    present: () => existsSync(CHROMIUM),
  },
  {
    pkg: "fonts-dejavu-core",
    why: "text in rendered plots",
    present: () => existsSync("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
  },
  {
    pkg: "python3-torch",
    why: "PyTorch for the CNN goldens and the bench peer",
    present: () => spawnSync("/usr/bin/python3", ["-c", "import torch"], { stdio: "ignore" }).status === 0,
  },
  {
    pkg: "libvulkan1",
    why: "the Vulkan loader Dawn needs for WebGPU in Node (SwiftShader's ICD ships with chromium)",
    present: () =>
      existsSync("/usr/lib/x86_64-linux-gnu/libvulkan.so.1") || existsSync("/usr/lib/aarch64-linux-gnu/libvulkan.so.1"),
  },
  {
    pkg: "libreoffice-calc",
    why: "recalculating exported workbooks",
    present: () => existsSync("/usr/bin/soffice") || existsSync("/usr/bin/libreoffice"),
  },
];

export const DEBIAN_PACKAGES = PREREQUISITES.map((p) => p.pkg);
