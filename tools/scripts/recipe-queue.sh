#!/usr/bin/env bash
# Runs `nnspec train` jobs one at a time from a queue file, at the lowest CPU priority, each into
# out/recipe-search/<id>/ with its log, and copies each finished run.json (compacted) to docs/runs/<id>.json.
# The queue is re-read before every job, so lines can be added, reordered or removed while it runs.
# A line: <id> <nnspec train arguments…>   ('#' starts a comment). Jobs whose docs/runs/<id>.json exists are skipped.
# Usage: MNIST_DIR=… nohup tools/scripts/recipe-queue.sh out/recipe-search/queue.txt &
set -u
cd "$(dirname "$0")/../.."
queue=${1:?queue file}
root=out/recipe-search
mkdir -p "$root" docs/runs
done_list="$root/.done"
touch "$done_list"
while :; do
  line=$(grep -v '^\s*#' "$queue" | grep -v '^\s*$' | while read -r id rest; do
    [ -e "docs/runs/$id.json" ] || grep -qx "$id" "$done_list" || { echo "$id $rest"; break; }
  done)
  [ -z "$line" ] && { echo "$(date -Is) queue empty"; exit 0; }
  id=${line%% *}; args=${line#* }
  out="$root/$id"
  echo "$(date -Is) start $id: nnspec train $args --out $out" 
  # shellcheck disable=SC2086
  nice -n 19 node tools/bin/nnspec.js train $args --out "$out" --force --log-every 100 > "$root/$id.log" 2>&1
  rc=$?
  if [ ! -f "$out/run.json" ]; then
    # No record at all: most likely the working tree was mid-edit when the job started. Retry twice, then give up.
    echo "$id" >> "$root/.failed"
    tries=$(grep -cx "$id" "$root/.failed")
    echo "$(date -Is) end $id: exit $rc, no run.json (try $tries of 3); $(tail -n 2 "$root/$id.log" | tr '\n' ' ')"
    [ "$tries" -ge 3 ] && echo "$id" >> "$done_list"
    sleep 120
    continue
  fi
  echo "$id" >> "$done_list"
  if [ -f "$out/run.json" ]; then
    node -e 'const fs=require("fs");const r=JSON.parse(fs.readFileSync(process.argv[1],"utf8"));fs.writeFileSync(process.argv[2],JSON.stringify(r)+"\n")' "$out/run.json" "docs/runs/$id.json"
  fi
  echo "$(date -Is) end $id: exit $rc; $(tail -n 12 "$root/$id.log" | grep -m1 -E '^(done|diverged|interrupted)' || echo 'no summary line')"
done
