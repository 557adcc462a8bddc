#!/usr/bin/env bash
# Runs the DP-SGD demo federation (experiments/configs/dp-template.toml) over a grid and prints one
# Markdown row per run with the final global metrics.
#
# Usage: experiments/dp_curve.sh SPLIT "EPSILONS" "BATCHES" "LEARNING_RATES" "CLIPS" [OUT_DIR]
#   e.g. experiments/dp_curve.sh val "1 8" "32 128" "0.001 0.003" "1.0"     (tuning, validation split)
#        experiments/dp_curve.sh test "1 2 4 8 inf" "32" "0.003" "1.0"      (the reported curve)
# An epsilon of "inf" runs the same federation without differential privacy.
# Needs a Release build in build/ (scripts/build.sh) and the data (scripts/data.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
split=$1; epsilons=$2; batches=$3; rates=$4; clips=$5; out=${6:-results/dp-curve}
mkdir -p "$out"
data_root="$(scripts/data.sh)"
echo "| epsilon | batch | lr | C | noise multiplier | ${split} ACC | ${split} AUC | wall-clock s |"
echo "|---|---|---|---|---|---|---|---|"
for eps in $epsilons; do for batch in $batches; do for lr in $rates; do for clip in $clips; do
  config="$out/dp-eps$eps-b$batch-lr$lr-c$clip-$split.toml"
  sed -e "s/@EPS@/$eps/g" -e "s/@BATCH@/$batch/g" -e "s/@LR@/$lr/g" -e "s/@CLIP@/$clip/g" \
      -e "s/@SPLIT@/$split/g" -e "s|@OUT@|$out|g" experiments/configs/dp-template.toml > "$config"
  if [ "$eps" = inf ]; then  # the same federation without differential privacy
    sed -i '/^\[privacy\]/,$d' "$config"
  fi
  log="$out/dp-eps$eps-b$batch-lr$lr-c$clip-$split.log"
  build/bin/fedmed-simulate --config "$config" --data "$data_root" > "$log" 2>&1 || {
    echo "run failed: $log" >&2; tail -20 "$log" >&2; exit 1; }
  run=$(grep -o "/[^ ]*dp-eps$eps-b$batch-lr$lr-c$clip-$split-[0-9-]*" "$log" | tail -1)
  python3 - "$run" "$eps" "$batch" "$lr" "$clip" <<'PY'
import json, re, sys
run, eps, batch, lr, clip = sys.argv[1:]
rows = [json.loads(l) for l in open(run + "/coordinator/metrics.jsonl")]
g = rows[-1]["global"]
log = open(run + "/site-1/site.log").read()
sigma = re.findall(r"noise multiplier ([0-9.]+)\)", log)
wall = sum(r["seconds"]["round"] for r in rows)
print(f"| {eps} | {batch} | {lr} | {clip} | {sigma[0] if sigma else '-'} | {g['accuracy']:.4f} | {g['auc']:.4f} | {wall:.0f} |")
PY
done; done; done; done
