#!/usr/bin/env bash
# Resumable uploads on a real cut, for docs/BENCHMARKS.md ("A 30 s cut in the middle of an
# upload"): the like-for-like job (3 sites, cnn, 1 local epoch, Adam 1e-3, batch 32) as real
# processes in the multi-host test bed (scripts/netns.sh), every site's link at RATE; once
# site-1 has sent CUT_AFTER bytes of its round-1 update (its uplink's tbf counter, counted from
# the start of its training), its link is cut for SECONDS (frames dropped both ways, as a
# pulled cable: scripts/netns.sh cut). Prints what the coordinator's log and metrics.jsonl say:
# whether the upload resumed (and from which byte) or restarted, whether site-1 trained round 1
# once, round 1's time and the round's contributors.
# Run as root after building fedmed-coordinator, fedmed-site, fedmed-pki, fedmed-netem-relay.
# Usage: bench/resume_cut.sh [SECONDS] [RATE] [CUT_AFTER]   (defaults: 30 10mbit 2000000)
#        FEDMED_BUILD=build-dir (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_CUT="${1:-30}"
RATE="${2:-10mbit}"
CUT_AFTER="${3:-2000000}"
. bench/lib.sh
testbed_setup fmr resume-cut
P="$FEDMED_NETNS_PREFIX"

write_job_configs "$OUT" 10.77.0.1:7443 2 300.0

scripts/netns.sh up --sites 3 --rate "$RATE" > /dev/null
sent() {  # bytes site-1 has sent on its uplink
  ip netns exec "$P-site-1" tc -s qdisc show dev eth0 | awk '/Sent/ { print $2; exit }'
}
ip netns exec "$P-coord" "$BUILD/bin/fedmed-coordinator" --config "$OUT/coordinator.toml" \
  > "$OUT/coordinator.out" 2>&1 &
coordinator=$!
pids=()
for i in 1 2 3; do
  ip netns exec "$P-site-$i" "$BUILD/bin/fedmed-site" --config "$OUT/site-$i.toml" \
    > "$OUT/site-$i.out" 2>&1 &
  pids+=($!)
done
until grep -q "round 1: training" "$OUT/site-1/site.log" 2> /dev/null; do sleep 0.1; done
base=$(sent)
until [ $(( $(sent) - base )) -ge "$CUT_AFTER" ]; do sleep 0.05; done
echo "site-1 sent $(( $(sent) - base )) bytes since its training began: cutting its link for ${SECONDS_CUT} s" >&2
scripts/netns.sh cut site-1 "$SECONDS_CUT" >&2
failed=0
wait "$coordinator" || failed=1
for i in "${pids[@]}"; do wait "$i" || failed=1; done
echo "coordinator and sites ended (failed=$failed); run directory: $OUT"
grep -h "site-1" "$OUT/coordinator/coordinator.log" \
  | grep -E "upload|resum|gone|kept|place|back" | cut -c1-200
echo "site-1 trainings of round 1: $(grep -c 'round 1: training' "$OUT/site-1/site.log")"
grep -h "round 1: update sent again" "$OUT/site-1/site.log" | cut -c1-160 || true
/usr/bin/python3 - "$OUT/coordinator/metrics.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print("round", r["round"], "seconds %.1f" % r["seconds"]["round"], "contributors",
          r["contributors"], "resumed_uploads", r.get("resumed_uploads"),
          "AUC %.4f" % r["global"]["auc"])
PY
exit "$failed"
