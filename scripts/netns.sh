#!/usr/bin/env bash
# The multi-host test bed (docs/NETWORK.md): the coordinator and every site in network namespaces
# of their own, joined through a bridge, each site's link shaped in rate (tbf) and in delay and
# loss (tools/netem_relay: this kernel has no netem). Run as root.
#
#   scripts/netns.sh up [--sites N] [--delay-ms D] [--rate RATE] [--loss P] [--seed S]
#                       [--proxy-sites site-2,site-3]
#   scripts/netns.sh down                 everything of the test bed, processes inside included
#   scripts/netns.sh status               namespaces, addresses, relays, proxy (exit 1 if broken)
#   scripts/netns.sh cut SITE SECONDS     cut SITE's link for SECONDS (0 = until `restore SITE`)
#   scripts/netns.sh restore SITE
#   scripts/netns.sh exec NODE CMD...     run CMD in coord, proxy or site-N's namespace
#
# up is idempotent: it first takes down whatever a previous (possibly crashed) run left behind.
# D is the one-way delay of a site's link in ms (RTT = 2 D), RATE a tc rate ("20mbit") applied in
# both directions, P the loss probability of a frame in each direction. A site named in
# --proxy-sites sits on a separate LAN whose only other host is an HTTP CONNECT proxy
# (tinyproxy, 10.78.0.1:3128): it has no route to the coordinator.
#
# Addresses: coordinator 10.77.0.1, proxy 10.77.0.2 (and 10.78.0.1 on the sites' LAN), site-N
# 10.77.0.(10+N) (or 10.78.0.(10+N) behind the proxy).
# Environment: FEDMED_NETNS_PREFIX (default "fm": namespaces fm-hub, fm-coord, fm-proxy,
# fm-site-N, so that test beds of different prefixes coexist), FEDMED_NETEM_RELAY (the relay
# binary; default build/bin/fedmed-netem-relay).
set -Eeuo pipefail

P="${FEDMED_NETNS_PREFIX:-fm}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RELAY="${FEDMED_NETEM_RELAY:-$ROOT/build/bin/fedmed-netem-relay}"
STATE="/run/fedmed-netns/$P"
COORD_IP=10.77.0.1
PROXY_IP=10.77.0.2
PROXY_LAN_IP=10.78.0.1
PROXY_PORT=3128

die() { echo "netns.sh: $*" >&2; exit 2; }
ns() { ip netns exec "$1" "${@:2}"; }

# Whether process $1 runs (a zombie, ended but not yet reaped by its parent, does not).
alive() { [ -e "/proc/$1/stat" ] && ! awk '{exit $3 == "Z" ? 0 : 1}' "/proc/$1/stat" 2>/dev/null; }

# Kills the process of pid file $1 if it still runs the program named $2 (never a reused pid).
kill_pidfile() {
  local file="$1" name="$2" pid
  [ -f "$file" ] || return 0
  pid="$(cat "$file" 2>/dev/null || true)"
  if [ -n "$pid" ] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 20); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

down() {
  local f n pids
  if [ -d "$STATE" ]; then
    for f in "$STATE"/relay-*.pid; do [ -e "$f" ] && kill_pidfile "$f" fedmed-netem-relay; done
    kill_pidfile "$STATE/tinyproxy.pid" tinyproxy
  fi
  for n in $(ip netns list | awk '{print $1}' | grep -E "^$P-(hub|coord|proxy|site-[0-9]+)$" || true); do
    # Whatever still runs inside (a crashed test's coordinator or sites): TERM, then KILL.
    pids="$(ip netns pids "$n" 2>/dev/null || true)"
    if [ -n "$pids" ]; then
      kill $pids 2>/dev/null || true
      for _ in $(seq 20); do
        pids="$(for p in $(ip netns pids "$n" 2>/dev/null); do alive "$p" && echo "$p"; done)"
        [ -n "$pids" ] || break
        sleep 0.1
      done
      [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
    fi
    ip netns del "$n" 2>/dev/null || true
  done
  rm -rf "$STATE"
}

# A TAP pair with a relay between them: $1 site namespace, $2 hub-side TAP name, $3 bridge,
# $4 the site's address/prefix.
site_link() {
  local site_ns="$1" hub_tap="$2" bridge="$3" addr="$4"
  ns "$site_ns" ip tuntap add dev eth0 mode tap
  ns "$P-hub" ip tuntap add dev "$hub_tap" mode tap
  ns "$site_ns" ip addr add "$addr" dev eth0
  ns "$site_ns" ip link set eth0 up
  ns "$P-hub" ip link set "$hub_tap" master "$bridge" up
  if [ -n "$RATE" ]; then
    # tbf on both TAPs: the site's uplink (its eth0) and downlink (the hub side's egress).
    # Buffer: 50 ms at the rate, as a modest router queue.
    ns "$site_ns" tc qdisc add dev eth0 root tbf rate "$RATE" burst 16kb latency 50ms
    ns "$P-hub" tc qdisc add dev "$hub_tap" root tbf rate "$RATE" burst 16kb latency 50ms
  fi
  local name="${site_ns#"$P-"}"
  setsid "$RELAY" --a "$site_ns:eth0" --b "$P-hub:$hub_tap" --delay-ms "$DELAY" --loss "$LOSS" \
    --seed "$SEED" --pid-file "$STATE/relay-$name.pid" > "$STATE/relay-$name.log" 2>&1 < /dev/null &
  SEED=$((SEED + 2))
  for _ in $(seq 50); do [ -s "$STATE/relay-$name.pid" ] && return 0; sleep 0.1; done
  echo "netns.sh: the relay of $name did not start: $(cat "$STATE/relay-$name.log")" >&2
  return 1
}

up() {
  local sites=3 proxy_sites="" i name
  DELAY=0 RATE="" LOSS=0 SEED=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --sites) sites="$2"; shift 2 ;;
      --delay-ms) DELAY="$2"; shift 2 ;;
      --rate) RATE="$2"; shift 2 ;;
      --loss) LOSS="$2"; shift 2 ;;
      --seed) SEED="$2"; shift 2 ;;
      --proxy-sites) proxy_sites=",$2,"; shift 2 ;;
      *) die "up: unknown option $1 (expected --sites, --delay-ms, --rate, --loss, --seed, --proxy-sites)" ;;
    esac
  done
  [[ "$sites" =~ ^[0-9]+$ ]] && [ "$sites" -ge 1 ] && [ "$sites" -le 200 ] \
    || die "--sites: expected an integer between 1 and 200, got '$sites'"
  [ -x "$RELAY" ] || die "no relay at $RELAY (build fedmed-netem-relay, or set FEDMED_NETEM_RELAY)"
  if [ -n "$proxy_sites" ]; then
    command -v tinyproxy > /dev/null || die "--proxy-sites needs tinyproxy (scripts/deps.sh installs it)"
  fi
  local n
  for n in ${proxy_sites//,/ }; do
    [[ "$n" =~ ^site-([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 1 ] && [ "${BASH_REMATCH[1]}" -le "$sites" ] \
      || die "--proxy-sites: '$n' is not one of site-1 .. site-$sites"
  done
  down
  # A step that fails (a bad --rate for tc, a relay that does not start) takes down what was built.
  trap 'echo "netns.sh: up failed; taking the test bed down" >&2; down' ERR
  mkdir -p "$STATE"
  echo "$sites" > "$STATE/sites"
  ip netns add "$P-hub"
  ns "$P-hub" ip link set lo up
  ns "$P-hub" ip link add br0 type bridge
  ns "$P-hub" ip link set br0 up
  # The coordinator: a plain veth into the bridge.
  ip netns add "$P-coord"
  ns "$P-coord" ip link set lo up
  ip -n "$P-coord" link add eth0 type veth peer name coord netns "$P-hub"
  ns "$P-coord" ip addr add "$COORD_IP/24" dev eth0
  ns "$P-coord" ip link set eth0 up
  ns "$P-hub" ip link set coord master br0 up
  if [ -n "$proxy_sites" ]; then
    # The proxy: one leg on the coordinator's network, one on the proxied sites' LAN (br1);
    # it does not forward IP, so the LAN reaches the coordinator only through tinyproxy.
    ns "$P-hub" ip link add br1 type bridge
    ns "$P-hub" ip link set br1 up
    ip netns add "$P-proxy"
    ns "$P-proxy" ip link set lo up
    ns "$P-proxy" sysctl -qw net.ipv4.ip_forward=0
    ip -n "$P-proxy" link add eth0 type veth peer name proxy0 netns "$P-hub"
    ip -n "$P-proxy" link add eth1 type veth peer name proxy1 netns "$P-hub"
    ns "$P-proxy" ip addr add "$PROXY_IP/24" dev eth0
    ns "$P-proxy" ip addr add "$PROXY_LAN_IP/24" dev eth1
    ns "$P-proxy" ip link set eth0 up
    ns "$P-proxy" ip link set eth1 up
    ns "$P-hub" ip link set proxy0 master br0 up
    ns "$P-hub" ip link set proxy1 master br1 up
    chmod 755 "$STATE"
    touch "$STATE/tinyproxy.log" && chown nobody:nogroup "$STATE/tinyproxy.log"
    cat > "$STATE/tinyproxy.conf" <<EOF
User nobody
Group nogroup
Listen $PROXY_LAN_IP
Port $PROXY_PORT
Timeout 600
LogFile "$STATE/tinyproxy.log"
LogLevel Connect
MaxClients 100
Allow 10.78.0.0/24
EOF
    setsid ip netns exec "$P-proxy" tinyproxy -d -c "$STATE/tinyproxy.conf" \
      > "$STATE/tinyproxy.out" 2>&1 < /dev/null &
    echo $! > "$STATE/tinyproxy.pid"
  fi
  for i in $(seq "$sites"); do
    name="site-$i"
    ip netns add "$P-$name"
    ns "$P-$name" ip link set lo up
    if [[ "$proxy_sites" == *",$name,"* ]]; then
      site_link "$P-$name" "s$i" br1 "10.78.0.$((10 + i))/24"
    else
      site_link "$P-$name" "s$i" br0 "10.77.0.$((10 + i))/24"
    fi
  done
  if [ -n "$proxy_sites" ]; then
    for _ in $(seq 50); do
      ns "$P-proxy" bash -c "exec 3<>/dev/tcp/$PROXY_LAN_IP/$PROXY_PORT" 2> /dev/null && break
      sleep 0.1
    done
    if ! ns "$P-proxy" bash -c "exec 3<>/dev/tcp/$PROXY_LAN_IP/$PROXY_PORT" 2> /dev/null; then
      echo "netns.sh: tinyproxy did not start: $(cat "$STATE/tinyproxy.out")" >&2
      return 1
    fi
  fi
  trap - ERR
  echo "netns.sh: up: $sites sites, delay ${DELAY} ms each way, rate ${RATE:-unshaped}, loss $LOSS;" \
       "coordinator $COORD_IP (namespace $P-coord)${proxy_sites:+, proxy http://$PROXY_LAN_IP:$PROXY_PORT}"
}

status() {
  local ok=0 n f name
  [ -d "$STATE" ] || { echo "netns.sh: no test bed with prefix $P"; return 1; }
  for n in $(ip netns list | awk '{print $1}' | grep -E "^$P-" || true); do
    printf '%-14s %s\n' "$n" "$(ip -n "$n" -4 -o addr show scope global | awk '{print $2 "=" $4}' | tr '\n' ' ')"
  done
  for f in "$STATE"/relay-*.pid; do
    [ -e "$f" ] || continue
    name="$(basename "$f" .pid)"; name="${name#relay-}"
    if alive "$(cat "$f")"; then
      echo "relay of $name: running (pid $(cat "$f"))"
    else
      echo "relay of $name: NOT RUNNING ($STATE/relay-$name.log)"; ok=1
    fi
  done
  if [ -f "$STATE/tinyproxy.pid" ]; then
    if alive "$(cat "$STATE/tinyproxy.pid")"; then
      echo "tinyproxy: running on $PROXY_LAN_IP:$PROXY_PORT (log $STATE/tinyproxy.log)"
    else
      echo "tinyproxy: NOT RUNNING ($STATE/tinyproxy.out)"; ok=1
    fi
  fi
  return $ok
}

relay_signal() {
  local site="$1" signal="$2" f="$STATE/relay-$1.pid"
  [ -f "$f" ] && alive "$(cat "$f")" || die "no running relay for '$site' ($f)"
  kill "-$signal" "$(cat "$f")"
}

[ "$(id -u)" -eq 0 ] || die "run as root (network namespaces)"
cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  up) up "$@" ;;
  down) down ;;
  status) status ;;
  cut)
    [ $# -eq 2 ] && [[ "$2" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "usage: cut SITE SECONDS"
    relay_signal "$1" USR1
    echo "netns.sh: $1 cut"
    if [ "$2" != 0 ]; then sleep "$2"; relay_signal "$1" USR2; echo "netns.sh: $1 restored"; fi
    ;;
  restore) [ $# -eq 1 ] || die "usage: restore SITE"; relay_signal "$1" USR2 ;;
  exec)
    [ $# -ge 2 ] || die "usage: exec NODE CMD..."
    node="$1"; shift
    exec ip netns exec "$P-$node" "$@"
    ;;
  *) die "usage: netns.sh up|down|status|cut SITE SECONDS|restore SITE|exec NODE CMD..." ;;
esac
