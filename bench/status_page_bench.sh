#!/usr/bin/env bash
# Timed program for docs/BENCHMARKS.md: what the coordinator's status server costs a round.
# The same real federation (fedmed-coordinator + 3 fedmed-site processes, PneumoniaMNIST IID
# thirds, ROUNDS rounds, 1 local epoch, Adam 1e-3, one thread per process) is run in three ways:
#   off: no [status] section (no status server, no board)
#   on:  [status] listen on loopback, and the page open in headless Chromium the whole run
#        (tests/status_page/watch_page.mjs: the page polls /api/status every 2 s and is
#        reloaded every 5 s) -- on the same cores as the sites, so this counts the browser too
#   poll: [status] listen, and the page's requests made without a browser
#        (bench/status_page_client.py poll: /api/status every 2 s, a full load about every 5 s):
#        the server's own cost, as with the browser on the operator's laptop
# The runs alternate (off, on, poll, off, on, poll, ...) so that drift of the machine hits all. Reports
# each run's mean round seconds (metrics.jsonl seconds.round) and the coordinator's CPU seconds
# (/usr/bin/time), the ratios on/off of their means, and, measured in each "on" run while the
# coordinator waits for its sites (bench/status_request_cost.py), the coordinator CPU per
# /api/status request and per full page load, from which the page's cost per round follows
# (a poll every 2 s and a reload every 5 s) without the noise of the machine.
# Usage: bench/status_page_bench.sh [triples] [rounds] [build dir]   (after scripts/deps.sh and a
# build of fedmed-coordinator, fedmed-site, fedmed-pki)
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS="${1:-3}"  # triples of runs
ROUNDS="${2:-3}"
BIN="$(realpath "${3:-build}")/bin"
DATA_ROOT="${FEDMED_DATA:-$(scripts/data.sh)}"
OUT="$(mktemp -d /tmp/fedmed-status-bench.XXXXXX)"
WATCH="$(pwd)/tests/status_page/watch_page.mjs"

run() {  # run NAME MODE PORT
  local name="$1" mode="$2" port="$3" dir="$OUT/$1"
  "$BIN/fedmed-pki" init --out "$dir/pki" --sites site-1,site-2,site-3 --partition iid \
      --coordinator-address "127.0.0.1:$port" > /dev/null
  local toml="$dir/pki/coordinator/coordinator.toml"
  sed -i -e "s/^rounds = .*/rounds = $ROUNDS/" -e "s/^min_sites = .*/min_sites = 3/" \
      -e "s/^optimizer = .*/optimizer = \"adam\"/" -e "s/^learning_rate = .*/learning_rate = 0.001/" \
      -e "s#^output_dir = .*#output_dir = \"$dir/out\"#" "$toml"
  if [ "$mode" != off ]; then sed -i 's/^listen = ""/listen = "127.0.0.1:0"/' "$toml"; fi
  /usr/bin/time -f "%e %U %S" -o "$dir/coordinator.time" \
      "$BIN/fedmed-coordinator" --config "$toml" --data "$DATA_ROOT" > "$dir/coordinator.out" 2>&1 &
  local coordinator=$!
  local watcher=""
  if [ "$mode" != off ]; then
    for _ in $(seq 100); do [ -s "$dir/out/status_url.txt" ] && break; sleep 0.1; done
    local url token
    url="$(cat "$dir/out/status_url.txt")"
    token="$(cat "$dir/pki/coordinator/status.token")"
    if [ "$mode" = on ]; then
      python3 bench/status_page_client.py cost "$url" "$token" "$(pgrep -P "$coordinator")" 2000 \
          > "$dir/request_cost.txt"
      node "$WATCH" "$url" "$token" 3600 > "$dir/watch.out" 2>&1 &
    else
      python3 bench/status_page_client.py poll "$url" "$token" > "$dir/watch.out" 2>&1 &
    fi
    watcher=$!
  fi
  local sites=()
  for k in 1 2 3; do
    "$BIN/fedmed-site" --config "$dir/pki/sites/site-$k/site.toml" --data "$DATA_ROOT" \
        > "$dir/site-$k.out" 2>&1 &
    sites+=($!)
  done
  for pid in "${sites[@]}"; do wait "$pid"; done
  wait "$coordinator"
  if [ -n "$watcher" ]; then kill "$watcher" 2> /dev/null || true; wait "$watcher" 2> /dev/null || true; fi
  python3 - "$dir" "$name" <<'PY'
import json, os, sys
d, name = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(d + "/out/metrics.jsonl")]
s = [r["seconds"]["round"] for r in rows]
wall, user, system = map(float, open(d + "/coordinator.time").read().split()[-3:])
extra = ""
if os.path.exists(d + "/request_cost.txt"):
    extra = " " + open(d + "/request_cost.txt").read().strip()
if os.path.exists(d + "/watch.out"):
    extra += " watcher=" + open(d + "/watch.out").read().strip().splitlines()[-1]
print(f"{name}: {len(s)} rounds, mean round {sum(s)/len(s):.3f} s, coordinator cpu "
      f"{user + system:.2f} s, rounds " + " ".join(f"{x:.2f}" for x in s) + extra)
PY
}

for i in $(seq "$PAIRS"); do
  run "off-$i" off $((17400 + 3 * i))
  run "on-$i" on $((17401 + 3 * i))
  run "poll-$i" poll $((17402 + 3 * i))
done | tee "$OUT/summary.txt"
python3 - "$OUT/summary.txt" <<'PY'
import re, statistics, sys
rounds = {"off": [], "on": [], "poll": []}
cpu = {"off": [], "on": [], "poll": []}
api, page = [], []
for line in open(sys.argv[1]):
    m = re.match(r"(off|on|poll)-\d+: .* mean round ([0-9.]+) s, coordinator cpu ([0-9.]+) s", line)
    if not m: continue
    rounds[m.group(1)].append(float(m.group(2)))
    c = re.search(r"api_status_cpu_ms=([0-9.]+) page_load_cpu_ms=([0-9.]+)", line)
    # The coordinator's CPU less what the request-cost measurement itself made it spend.
    spent = float(m.group(3))
    if c:
        api.append(float(c.group(1))); page.append(float(c.group(2)))
        spent -= (2000 * api[-1] + 200 * page[-1]) / 1000
    cpu[m.group(1)].append(spent)
sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
for what, v in (("mean round seconds", rounds),
                ("coordinator cpu seconds (less the request-cost measurement)", cpu)):
    mo, mn, mp = (statistics.mean(v[k]) for k in ("off", "on", "poll"))
    print(f"{what}: off {mo:.3f} (sd {sd(v['off']):.3f}), page in chromium {mn:.3f} "
          f"(sd {sd(v['on']):.3f}), poll {mp:.3f} (sd {sd(v['poll']):.3f}); "
          f"ratio chromium/off {mn / mo:.4f}, poll/off {mp / mo:.4f}")
if api:
    a, p = statistics.mean(api), statistics.mean(page)
    r = statistics.mean(rounds["off"])
    # Per round: a poll every 2 s, a full reload every 5 s.
    cost = r / 2 * a / 1000 + r / 5 * p / 1000
    print(f"coordinator cpu per /api/status {a:.3f} ms, per page load {p:.3f} ms: "
          f"{cost * 1000:.1f} ms per {r:.1f} s round = {100 * cost / r:.3f} % of the round")
PY
echo "run directories: $OUT"
