# Shared by the benchmarks that run the like-for-like job (3 sites, cnn, 1 local epoch, Adam 1e-3,
# batch 32, server-side evaluation only; PneumoniaMNIST IID thirds) as real fedmed-coordinator
# and fedmed-site processes in the multi-host test bed (scripts/netns.sh): encoding_bench.sh,
# netns_bench.sh, resume_cut.sh. Sourced from the repository root, after `set -euo pipefail`.

# Sets BUILD ($FEDMED_BUILD, default build), DATA_ROOT (scripts/data.sh) and OUT (a new
# /tmp/fedmed-$2.XXXXXX), names the test bed's namespaces $1<pid> (FEDMED_NETNS_PREFIX) with
# the relay of $BUILD, takes the test bed down when the script exits, and provisions site-1, -2
# and -3 and a coordinator at 10.77.0.1:7443 into $OUT/pki.
testbed_setup() {
  local prefix="$1" name="$2"
  BUILD="$(cd "${FEDMED_BUILD:-build}" && pwd)"
  DATA_ROOT="$(scripts/data.sh)"
  export FEDMED_NETNS_PREFIX="$prefix$$" FEDMED_NETEM_RELAY="$BUILD/bin/fedmed-netem-relay"
  OUT="$(mktemp -d "/tmp/fedmed-$name.XXXXXX")"
  trap 'scripts/netns.sh down > /dev/null 2>&1 || true' EXIT
  trap 'exit 1' INT TERM
  "$BUILD/bin/fedmed-pki" init --out "$OUT/pki" --sites site-1,site-2,site-3 \
    --coordinator-address 10.77.0.1:7443 > /dev/null
}

# Writes the job's configurations from the provisioned ones into $1 (created): coordinator.toml,
# listening on $2, $3 rounds, every site in each round, output in $1/coordinator; site-N.toml
# for N = 1, 2, 3, dialling $2, IID third N of the data, giving up on an unreachable coordinator
# after $4 s, output in $1/site-N; the data under $DATA_ROOT. Further arguments are more sed
# arguments for coordinator.toml (e.g. -e "s|^key = .*|key = value|").
write_job_configs() {
  local dir="$1" address="$2" rounds="$3" give_up="$4" i
  shift 4
  mkdir -p "$dir"
  sed -e "0,/^listen = /s|^listen = .*|listen = \"$address\"|" \
      -e "s|^output_dir = .*|output_dir = \"$dir/coordinator\"|" \
      -e "s|^rounds = .*|rounds = $rounds|" -e "s|^min_sites = .*|min_sites = 3|" \
      -e "s|^optimizer = .*|optimizer = \"adam\"|" -e "s|^learning_rate = .*|learning_rate = 0.001|" \
      -e "s|^federated = .*|federated = false|" \
      "$@" \
      -e "s|^data = \"medmnist|data = \"$DATA_ROOT/medmnist|" \
      -e "s#^\(ca_cert\|cert\|key\|crl\|token_file\) = \"\(.*\)\"#\1 = \"$OUT/pki/coordinator/\2\"#" \
      "$OUT/pki/coordinator/coordinator.toml" > "$dir/coordinator.toml"
  for i in 1 2 3; do
    sed -e "s|^coordinator = .*|coordinator = \"$address\"|" \
        -e "s|^output_dir = .*|output_dir = \"$dir/site-$i\"|" \
        -e "s|^partition = .*|partition = \"iid\"|" -e "s|^num_shards = .*|num_shards = 3|" \
        -e "s|^shard = .*|shard = $i|" -e "s|^give_up_after_seconds = .*|give_up_after_seconds = $give_up|" \
        -e "s|^path = \"medmnist|path = \"$DATA_ROOT/medmnist|" \
        -e "s#^\(ca_cert\|cert\|key\) = \"\(.*\)\"#\1 = \"$OUT/pki/sites/site-$i/\2\"#" \
        "$OUT/pki/sites/site-$i/site.toml" > "$dir/site-$i.toml"
  done
}

# Runs $1/coordinator.toml and $1/site-{1,2,3}.toml as fedmed-coordinator and fedmed-site, each
# in its namespace of the test bed, or all on this host when $2 is "loopback"; their output in
# $1/coordinator.out and $1/site-N.out. Waits for every one (the sites are stopped when the
# coordinator fails: they would have nobody to talk to); returns 1 when any failed.
run_parties() {
  local dir="$1" where="$2" pids=() coordinator i failed=0 c=()
  [ "$where" = loopback ] || c=(ip netns exec "$FEDMED_NETNS_PREFIX-coord")
  "${c[@]}" "$BUILD/bin/fedmed-coordinator" --config "$dir/coordinator.toml" \
    > "$dir/coordinator.out" 2>&1 &
  coordinator=$!
  for i in 1 2 3; do
    [ "$where" = loopback ] || c=(ip netns exec "$FEDMED_NETNS_PREFIX-site-$i")
    "${c[@]}" "$BUILD/bin/fedmed-site" --config "$dir/site-$i.toml" > "$dir/site-$i.out" 2>&1 &
    pids+=($!)
  done
  wait "$coordinator" || failed=1
  if [ "$failed" -ne 0 ]; then kill "${pids[@]}" 2> /dev/null || true; fi
  for i in "${pids[@]}"; do wait "$i" || failed=1; done
  return "$failed"
}
