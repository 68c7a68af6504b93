#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine with Node 20 for everything here: the Debian packages the tests need
# (scripts/prerequisites.mjs lists them), pnpm 12.4.2 and the workspace. Used by the README's first command and by
# .ci/run. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Playwright is only the driver of the browser tests: they use Debian's chromium, never a downloaded browser.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

read -r -a packages <<<"$(node scripts/check-prerequisites.mjs --list)"
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== Debian packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: installing ${missing[*]} needs root (or sudo)" >&2; exit 2; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "$(pnpm --version 2>/dev/null || true)" != "12.4.2" ]; then
  echo "== pnpm 12.4.2"
  npm install -g pnpm@12.4.2 >/dev/null 2>&1
fi
echo "== workspace (pnpm install --frozen-lockfile)"
pnpm install --frozen-lockfile
node scripts/check-prerequisites.mjs
echo "setup done: pnpm start (the main job), pnpm test (every test)"
