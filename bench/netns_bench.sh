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
BUILD="$(cd "${FEDMED_BUILD:-build}" && pwd)"
ROUNDS="${1:-5}"
DATA_ROOT="$(scripts/data.sh)"
export FEDMED_NETNS_PREFIX="fmb$$" FEDMED_NETEM_RELAY="$BUILD/bin/fedmed-netem-relay"
OUT="$(mktemp -d /tmp/fedmed-netns-bench.XXXXXX)"
trap 'scripts/netns.sh down > /dev/null 2>&1 || true' EXIT
trap 'exit 1' INT TERM

"$BUILD/bin/fedmed-pki" init --out "$OUT/pki" --sites site-1,site-2,site-3 \
  --coordinator-address 10.77.0.1:7443 > /dev/null

# coordinator.toml and site-N.toml of one run in $1, listening on / dialling $2.
configure() {
  local dir="$1" address="$2" i
  mkdir -p "$dir"
  sed -e "0,/^listen = /s|^listen = .*|listen = \"$address\"|" \
      -e "s|^output_dir = .*|output_dir = \"$dir/coordinator\"|" \
      -e "s|^rounds = .*|rounds = $ROUNDS|" -e "s|^min_sites = .*|min_sites = 3|" \
      -e "s|^optimizer = .*|optimizer = \"adam\"|" -e "s|^learning_rate = .*|learning_rate = 0.001|" \
      -e "s|^federated = .*|federated = false|" \
      -e "s|^data = \"medmnist|data = \"$DATA_ROOT/medmnist|" \
      -e "s#^\(ca_cert\|cert\|key\|crl\|token_file\) = \"\(.*\)\"#\1 = \"$OUT/pki/coordinator/\2\"#" \
      "$OUT/pki/coordinator/coordinator.toml" > "$dir/coordinator.toml"
  for i in 1 2 3; do
    sed -e "s|^coordinator = .*|coordinator = \"$address\"|" \
        -e "s|^output_dir = .*|output_dir = \"$dir/site-$i\"|" \
        -e "s|^partition = .*|partition = \"iid\"|" -e "s|^num_shards = .*|num_shards = 3|" \
        -e "s|^shard = .*|shard = $i|" -e "s|^give_up_after_seconds = .*|give_up_after_seconds = 60.0|" \
        -e "s|^path = \"medmnist|path = \"$DATA_ROOT/medmnist|" \
        -e "s#^\(ca_cert\|cert\|key\) = \"\(.*\)\"#\1 = \"$OUT/pki/sites/site-$i/\2\"#" \
        "$OUT/pki/sites/site-$i/site.toml" > "$dir/site-$i.toml"
  done
}

# Runs one federation; $1 name, $2 "" (loopback) or "netns".
run() {
  local name="$1" mode="$2" dir="$OUT/$1" address pids=() i c
  if [ -z "$mode" ]; then
    address="127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  else
    address="10.77.0.1:7443"
  fi
  configure "$dir" "$address"
  local start end
  start=$(date +%s.%N)
  if [ -z "$mode" ]; then c=(); else c=(ip netns exec "$FEDMED_NETNS_PREFIX-coord"); fi
  "${c[@]}" "$BUILD/bin/fedmed-coordinator" --config "$dir/coordinator.toml" > "$dir/coordinator.out" 2>&1 &
  local coordinator=$!
  for i in 1 2 3; do
    if [ -z "$mode" ]; then c=(); else c=(ip netns exec "$FEDMED_NETNS_PREFIX-site-$i"); fi
    "${c[@]}" "$BUILD/bin/fedmed-site" --config "$dir/site-$i.toml" > "$dir/site-$i.out" 2>&1 &
    pids+=($!)
  done
  local failed=0
  wait "$coordinator" || failed=1
  # The sites end with the federation; a coordinator that failed leaves them nobody to talk to.
  if [ "$failed" -ne 0 ]; then kill "${pids[@]}" 2> /dev/null || true; fi
  for i in "${pids[@]}"; do wait "$i" || failed=1; done
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
