#!/usr/bin/env bash
# Timed program for docs/BENCHMARKS.md: the demo federation and a same-run baseline.
#   1. fedmed-simulate on experiments/demo.toml (2 local epochs), under /usr/bin/time -v
#   2. fedmed-simulate on experiments/configs/bench-1epoch.toml (1 local epoch, server-side
#      evaluation only: the job Flower runs in ../shared/anchors/flower), with where the rounds'
#      time went (critical paths, metrics.jsonl) and the part outside the rounds
#   3. the same 1-epoch job in plain PyTorch (bench/pytorch_baseline.py, Debian's python3-torch):
#      the floor for any Python framework, measured in the same run on the same machine
#   4. when Flower 1.6's source is unpacked (FLOWER_SRC, see ../shared/anchors/flower/README.md)
#      and python3-grpcio is installed: the anchors' side_by_side.sh, fedmed and Flower
#      interleaved on that job, in the same run.
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
  grep -E "^ +[0-9] \||peak RSS|wall-clock|time went" "$OUT/one-$i.log"
  echo "== repeat $i: plain PyTorch, 1 local epoch"
  /usr/bin/python3 bench/pytorch_baseline.py "$DATA_ROOT"
done
ANCHORS="$(cd "$(dirname "$DATA_ROOT")" && pwd)/anchors/flower"
FLOWER_SRC="${FLOWER_SRC:-${TMPDIR:-/tmp}/anchors/flower-src}"
if [ -x "$ANCHORS/side_by_side.sh" ] && [ -f "$FLOWER_SRC/flwr/__init__.py" ] &&
    /usr/bin/python3 -c "import grpc" 2> /dev/null; then
  echo "== fedmed and Flower 1.6 side by side ($ANCHORS/side_by_side.sh, $REPEATS repeat(s))"
  FLOWER_SRC="$FLOWER_SRC" DATA="$DATA_ROOT/medmnist/pneumoniamnist.npz" \
      "$ANCHORS/side_by_side.sh" "$PWD" "$REPEATS"
else
  echo "== Flower not run: needs $ANCHORS/side_by_side.sh, Flower 1.6's source in $FLOWER_SRC" \
       "and python3-grpcio (../shared/anchors/flower/README.md)"
fi
echo "logs and run directories: $OUT"
