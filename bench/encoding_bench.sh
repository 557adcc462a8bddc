#!/usr/bin/env bash
# Compressed updates on slow links, for docs/BENCHMARKS.md ("Compressed updates"): the
# like-for-like job (3 sites, cnn, 1 local epoch, Adam 1e-3, batch 32, one thread per process,
# server-side evaluation only; PneumoniaMNIST IID thirds) as real fedmed-coordinator and
# fedmed-site processes in the multi-host test bed (scripts/netns.sh), every site's link shaped
# by tbf to 1, 10 and 100 Mbit/s each way (no added delay), once per [transport] update_encoding
# (float32, float16, int8), one after the other in the same run with the same seed.
# Prints a Markdown table: mean seconds per round and its ratio to float32 at the same rate,
# mean transfer seconds per round, bytes up per round (metrics.jsonl) and its ratio to float32,
# final global AUC; writes the rows to $OUT/encoding_bench.tsv and, with matplotlib, a plot of
# seconds per round against the link rate to docs/img/encoding_round_time.png.
# Run as root, after building fedmed-coordinator, fedmed-site, fedmed-pki, fedmed-netem-relay.
# Usage: bench/encoding_bench.sh [ROUNDS] [RATES]   (defaults: 2 "1mbit 10mbit 100mbit")
#        FEDMED_BUILD=build-dir (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-2}"
RATES="${2:-1mbit 10mbit 100mbit}"
. bench/lib.sh
testbed_setup fme encoding-bench

# coordinator.toml and site-N.toml of one run in $1 with update encoding $2.
configure() {
  local dir="$1" encoding="$2"
  write_job_configs "$dir" 10.77.0.1:7443 "$ROUNDS" 120.0 \
    -e "s|^update_encoding = .*|update_encoding = \"$encoding\"|"
  grep -q "^update_encoding = \"$encoding\"" "$dir/coordinator.toml" \
    || { echo "coordinator.toml has no [transport] update_encoding" >&2; exit 1; }
}

# Runs one federation in the test bed; $1 rate, $2 encoding. Prints one row.
run() {
  local rate="$1" encoding="$2" dir="$OUT/$1-$2" failed=0
  configure "$dir" "$encoding"
  run_parties "$dir" netns || failed=1
  [ "$failed" -eq 0 ] || { echo "$rate $encoding: a party failed; see $dir" >&2; exit 1; }
  /usr/bin/python3 - "$dir/coordinator/metrics.jsonl" "$rate" "$encoding" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
per_round = sum(r["seconds"]["round"] for r in rows) / len(rows)
transfer = sum(r["seconds"]["transfer"] for r in rows) / len(rows)
up = sum(r["bytes"]["up"] for r in rows) / len(rows)
print(sys.argv[2], sys.argv[3], len(rows), "%.2f" % per_round, "%.2f" % transfer, "%d" % up,
      "%.4f" % rows[-1]["global"]["auc"])
PY
}

for rate in $RATES; do
  echo "== $rate per site" >&2
  scripts/netns.sh up --sites 3 --rate "$rate" > /dev/null
  for encoding in float32 float16 int8; do
    echo "   $encoding" >&2
    run "$rate" "$encoding" >> "$OUT/encoding_bench.tsv"
  done
done

echo "| link per site | encoding | rounds | s per round | vs float32 | transfer s per round | bytes up per round | vs float32 | final global AUC |"
echo "|---|---|---|---|---|---|---|---|---|"
/usr/bin/python3 - "$OUT/encoding_bench.tsv" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
base = {r[0]: r for r in rows if r[1] == "float32"}
for rate, enc, n, per, transfer, up, auc in rows:
    b = base[rate]
    print(f"| {rate} | {enc} | {n} | {per} | {float(per) / float(b[3]):.2f} | {transfer} | {up} | "
          f"{int(up) / int(b[5]):.3f} | {auc} |")
PY
/usr/bin/python3 - "$OUT/encoding_bench.tsv" docs/img/encoding_round_time.png <<'PY' || echo "(no plot: matplotlib missing)" >&2
import sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
mbit = lambda r: float(r.replace("mbit", ""))
fig, ax = plt.subplots(figsize=(6, 4))
for enc, marker in (("float32", "o"), ("float16", "s"), ("int8", "^")):
    pts = sorted((mbit(r[0]), float(r[3])) for r in rows if r[1] == enc)
    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=enc)
ax.set_xscale("log")
ax.set_xlabel("link rate per site (Mbit/s, each way)")
ax.set_ylabel("seconds per round")
ax.set_title("Round time by update encoding (3 sites, cnn, 1 local epoch)")
ax.grid(True, which="both", alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
PY
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); run directories: $OUT"
