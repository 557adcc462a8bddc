#!/usr/bin/env bash
# Scale benchmark for docs/BENCHMARKS.md: N sites as threads of one fedmed-simulate process
# (experiments/configs/scale.toml: PneumoniaMNIST IID, cnn, 3 rounds, 1 local epoch, federated
# evaluation), one process per N, so that each peak RSS (getrusage ru_maxrss of the whole
# simulation, = /usr/bin/time -v "Maximum resident set size") belongs to that N alone.
# Prints a Markdown table: sites, wall-clock, mean seconds per round, final global AUC, peak RSS,
# and MiB per additional site against the previous row and against the first.
# Usage: bench/scale_bench.sh [N ...]   (default: 10 30 100; after scripts/build.sh)
#        FEDMED_BUILD=build-dir bench/scale_bench.sh ...   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${FEDMED_BUILD:-build}"
SITES=("$@")
if [ ${#SITES[@]} -eq 0 ]; then SITES=(10 30 100); fi
DATA_ROOT="$(scripts/data.sh)"
OUT="$(mktemp -d /tmp/fedmed-scale.XXXXXX)"
rows=()
for n in "${SITES[@]}"; do
  echo "== $n sites" >&2
  /usr/bin/time -v "$BUILD/bin/fedmed-simulate" --config experiments/configs/scale.toml \
      --data "$DATA_ROOT" --sites "$n" --no-plots --output "$OUT/$n" \
      > "$OUT/sites-$n.log" 2> "$OUT/sites-$n.time" || {
    echo "fedmed-simulate failed for $n sites; see $OUT/sites-$n.log" >&2
    exit 1
  }
  grep -E "peak RSS|wall-clock" "$OUT/sites-$n.log" >&2
  run="$(ls -d "$OUT/$n"/*/ | head -1)"
  rows+=("$(/usr/bin/python3 - "$run" "$OUT/sites-$n.time" <<'PY'
import json, re, sys
run, time_file = sys.argv[1], sys.argv[2]
summary = json.load(open(run + "/summary.json"))
rounds = [json.loads(l) for l in open(run + "/coordinator/metrics.jsonl") if l.strip()]
per_round = sum(r["seconds"]["round"] for r in rounds) / len(rounds)
rss_kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(time_file).read()).group(1))
print(summary["sites"], summary["rounds_completed"], "%.1f" % summary["wall_seconds"],
      "%.1f" % per_round, "%.4f" % summary["global"]["auc"], "%.0f" % summary["peak_rss_mib"],
      "%.0f" % (rss_kib / 1024))
PY
)")
done
echo
echo "| sites | rounds | wall-clock s | s per round | final global AUC | peak RSS MiB (ru_maxrss) | /usr/bin/time MiB | MiB per additional site (vs previous row) | (vs first row) |"
echo "|---|---|---|---|---|---|---|---|---|"
first=""; prev=""
for row in "${rows[@]}"; do
  read -r n rounds wall per auc rss time_rss <<< "$row"
  d_prev="-"; d_first="-"
  if [ -n "$prev" ]; then
    read -r pn prss <<< "$prev"
    d_prev="$(awk -v a="$rss" -v b="$prss" -v n="$n" -v m="$pn" 'BEGIN { printf "%.1f", (a - b) / (n - m) }')"
    read -r fn frss <<< "$first"
    d_first="$(awk -v a="$rss" -v b="$frss" -v n="$n" -v m="$fn" 'BEGIN { printf "%.1f", (a - b) / (n - m) }')"
  else
    first="$n $rss"
  fi
  prev="$n $rss"
  echo "| $n | $rounds | $wall | $per | $auc | $rss | $time_rss | $d_prev | $d_first |"
done
echo
echo "logs and run directories: $OUT"
