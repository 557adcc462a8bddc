#!/usr/bin/env bash
# Network benchmark for docs/BENCHMARKS.md ("Real networks"): the like-for-like job (3 sites,
# 5 rounds, 1 local epoch, cnn, Adam 1e-3, batch 32, one thread per process, server-side
# evaluation only; PneumoniaMNIST IID thirds) as real fedmed-coordinator and fedmed-site
# processes, once per network, one after the other in the same run:
#   loopback        all on 127.0.0.1 (the baseline)
#   netns           each party in its own namespace (scripts/netns.sh), links unshaped
#   40ms-20mbit     every site's link at 40 ms RTT and 20 Mbit/s each way
#   40ms-20mbit-1%  the same with 1 % of the frames lost in each direction
# Prints a Markdown table: wall-clock (process start to the coordinator's exit), its ratio to
# loopback, mean seconds per round, of the sites' local training and of the transfers per round
# (metrics.jsonl), the transfers' ratio to loopback, final global AUC and accuracy. Run as root, after building fedmed-coordinator, fedmed-site,
# fedmed-pki and fedmed-netem-relay.
# Usage: bench/netns_bench.sh [ROUNDS]       FEDMED_BUILD=build-dir (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-5}"
. bench/lib.sh
testbed_setup fmb netns-bench

# Runs one federation; $1 name, $2 "" (loopback) or "netns".
run() {
  local name="$1" mode="$2" dir="$OUT/$1" address
  if [ -z "$mode" ]; then
    address="127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  else
    address="10.77.0.1:7443"
  fi
  write_job_configs "$dir" "$address" "$ROUNDS" 60.0  # coordinator.toml, site-N.toml
  local start end
  start=$(date +%s.%N)
  local failed=0
  run_parties "$dir" "${mode:-loopback}" || failed=1
  end=$(date +%s.%N)
  [ "$failed" -eq 0 ] || { echo "$name: a party failed; see $dir" >&2; exit 1; }
  /usr/bin/python3 - "$dir/coordinator/metrics.jsonl" "$name" "$start" "$end" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
wall = float(sys.argv[4]) - float(sys.argv[3])
per_round = sum(r["seconds"]["round"] for r in rows) / len(rows)
transfer = sum(r["seconds"]["transfer"] for r in rows) / len(rows)
training = sum(r["seconds"]["site_training_mean"] for r in rows) / len(rows)
g = rows[-1]["global"]
print(sys.argv[2], len(rows), "%.1f" % wall, "%.2f" % per_round, "%.2f" % training,
      "%.2f" % transfer, "%.4f" % g["auc"], "%.4f" % g["accuracy"])
PY
}

rows=()
echo "== loopback" >&2
rows+=("$(run loopback "")")
echo "== netns, unshaped" >&2
scripts/netns.sh up --sites 3 > /dev/null
rows+=("$(run netns netns)")
echo "== 40 ms RTT, 20 Mbit/s" >&2
scripts/netns.sh up --sites 3 --delay-ms 20 --rate 20mbit > /dev/null
rows+=("$(run 40ms-20mbit netns)")
echo "== 40 ms RTT, 20 Mbit/s, 1 % loss" >&2
scripts/netns.sh up --sites 3 --delay-ms 20 --rate 20mbit --loss 0.01 --seed 1 > /dev/null
rows+=("$(run 40ms-20mbit-1%loss netns)")
echo "1 % loss, frames dropped by the relays:" >&2
for i in 1 2 3; do
  kill -HUP "$(cat "/run/fedmed-netns/$FEDMED_NETNS_PREFIX/relay-site-$i.pid")"
done
sleep 0.5
grep -h "dropped" /run/fedmed-netns/"$FEDMED_NETNS_PREFIX"/relay-site-*.log | tail -6 >&2

echo
echo "| network | rounds | wall-clock s | vs loopback | s per round | site training s per round | transfer s per round | vs loopback | final global AUC | final ACC |"
echo "|---|---|---|---|---|---|---|---|---|---|"
base=""; base_transfer=""
for row in "${rows[@]}"; do
  read -r name n wall per training transfer auc acc <<< "$row"
  [ -n "$base" ] || { base="$wall"; base_transfer="$transfer"; }
  echo "| $name | $n | $wall | $(awk -v a="$wall" -v b="$base" 'BEGIN { printf "%.2f", a / b }') | $per | $training | $transfer | $(awk -v a="$transfer" -v b="$base_transfer" 'BEGIN { printf "%.0f", a / b }') | $auc | $acc |"
done
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); run directories: $OUT"
