#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ (clang-14, AddressSanitizer + UndefinedBehaviorSanitizer,
# in build-fuzz/) and runs each for SECONDS (default 600) on its seed corpus fuzz/corpus/<harness>/,
# then prints one line per harness: runs, execs/s, coverage (libFuzzer's "cov": instrumented edges
# reached; "ft": features), corpus size, peak RSS and crashes. Exits 1 if any harness crashed
# (sanitizer report, undocumented exception, timeout, out-of-memory or a single allocation over
# the malloc limit); the crashing input is kept as build-fuzz/fuzz-out/<harness>/crash-*, and the
# log beside it says what happened. Reproduce with build-fuzz/fuzz/<harness> <crash file>.
#
# Usage: scripts/fuzz.sh [SECONDS]       e.g. scripts/fuzz.sh 30 (CI), scripts/fuzz.sh 600
# Environment: FUZZ_HARNESSES="fuzz_npy fuzz_npz" runs only those; FUZZ_JOBS=2 runs two harnesses
# at a time (default 1: execs/s are then comparable between harnesses).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-600}"
JOBS="${FUZZ_JOBS:-1}"
HARNESSES=(${FUZZ_HARNESSES:-fuzz_model_state fuzz_model_download fuzz_coordinator_requests fuzz_npy
           fuzz_npz fuzz_image fuzz_dicom fuzz_config fuzz_privacy_log fuzz_checkpoint})

scripts/deps.sh
export CCACHE_BASEDIR="$PWD"
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFEDMED_FUZZ=ON -DFEDMED_BUILD_TESTS=OFF -DFEDMED_BUILD_BENCH=OFF \
  > build-fuzz.cmake.log 2>&1 || { cat build-fuzz.cmake.log; exit 1; }
cmake --build build-fuzz --target "${HARNESSES[@]}" -j"$(nproc)"

OUT=build-fuzz/fuzz-out
# Leaks inside DCMTK's and LibTorch's own caches are not ours to find; everything else aborts.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

run_one() {
  local h="$1" dir="$OUT/$1"
  rm -rf "$dir"
  mkdir -p "$dir/corpus"
  # The corpus the run grows starts from the seeds; the seeds directory itself is not written.
  set +e
  "build-fuzz/fuzz/$h" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -artifact_prefix="$dir/" \
    "$dir/corpus" "fuzz/corpus/$h" > "$dir/log" 2>&1
  echo $? > "$dir/rc"
  set -e
}

start=$(date +%s)
running=0
for h in "${HARNESSES[@]}"; do
  run_one "$h" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

crashed=0
printf '%-26s %8s %10s %8s %7s %7s %7s %8s %s\n' harness seconds runs exec/s cov ft corpus rss_mb crashes
for h in "${HARNESSES[@]}"; do
  dir="$OUT/$h"
  log="$dir/log"
  rc=$(cat "$dir/rc" 2>/dev/null || echo 1)
  # The last status line ("#N ... cov: C ft: F corp: K/..."), and the final stats.
  status=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<< "$status")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<< "$status")
  corp=$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<< "$status")
  runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)
  eps=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log" | tail -1)
  rss=$(sed -nE 's/^stat::peak_rss_mb: *([0-9]+)/\1/p' "$log" | tail -1)
  findings=$(find "$dir" -maxdepth 1 \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \
                                    -o -name 'leak-*' \) | sort)
  crashes=$(grep -c . <<< "$findings" || true)
  if [ "$rc" != 0 ] && [ "$crashes" = 0 ]; then crashes="?(rc $rc)"; fi
  if [ "$crashes" != 0 ]; then
    crashed=1
    crashes="$crashes: $(head -1 <<< "$findings") (see $log)"
  fi
  printf '%-26s %8s %10s %8s %7s %7s %7s %8s %s\n' "$h" "$SECONDS_EACH" "${runs:--}" "${eps:--}" \
    "${cov:--}" "${ft:--}" "${corp:--}" "${rss:--}" "$crashes"
done
echo "fuzz.sh: ${#HARNESSES[@]} harnesses, ${SECONDS_EACH} s each, $(( $(date +%s) - start )) s in all"
if [ "$crashed" != 0 ]; then
  echo "fuzz.sh: CRASHES found (inputs and logs under $OUT/)" >&2
  exit 1
fi
