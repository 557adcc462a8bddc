#!/usr/bin/env bash
# Timed program for docs/BENCHMARKS.md: the demo federation and a same-run baseline.
#   1. fedmed-simulate on experiments/demo.toml (2 local epochs), under /usr/bin/time -v
#   2. fedmed-simulate on experiments/configs/bench-1epoch.toml (1 local epoch: the job the Flower
#      reference in the issue describes)
#   3. the same 1-epoch job in plain PyTorch (bench/pytorch_baseline.py, Debian's python3-torch):
#      the floor for any Python framework, measured in the same run on the same machine.
# Usage: bench/demo_bench.sh [repeats]   (after scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS="${1:-1}"
DATA_ROOT="$(scripts/data.sh)"
OUT="$(mktemp -d /tmp/fedmed-bench.XXXXXX)"
for i in $(seq "$REPEATS"); do
  echo "== repeat $i: demo (2 local epochs)"
  /usr/bin/time -v build/bin/fedmed-simulate --config experiments/demo.toml --data "$DATA_ROOT" \
      --output "$OUT" > "$OUT/demo-$i.log" 2> "$OUT/demo-$i.time"
  grep -E "^ +[0-9] \||peak RSS|wall-clock" "$OUT/demo-$i.log"
  grep -E "Maximum resident|Elapsed" "$OUT/demo-$i.time"
  echo "== repeat $i: 1 local epoch"
  build/bin/fedmed-simulate --config experiments/configs/bench-1epoch.toml --data "$DATA_ROOT" \
      --output "$OUT" > "$OUT/one-$i.log" 2>&1
  grep -E "^ +[0-9] \||peak RSS|wall-clock" "$OUT/one-$i.log"
  echo "== repeat $i: plain PyTorch, 1 local epoch"
  /usr/bin/python3 bench/pytorch_baseline.py "$DATA_ROOT"
done
echo "logs and run directories: $OUT"
