#!/usr/bin/env bash
# A private three-node Redis Cluster for the tests, on 127.0.0.1 only, no persistence,
# its node files in a private folder.
#
# Sourced (what scripts/test.sh does), so the nodes are children of the caller's shell:
#   . scripts/redis-cluster.sh
#   redis_cluster_start [STATE_FILE]  install redis-server if missing (scripts/redis.sh),
#                                     start 3 nodes (`--cluster-enabled yes`) on free ports,
#                                     join them with `redis-cli --cluster create` (3 primaries,
#                                     no replicas), wait (bounded) for `cluster_state:ok` on
#                                     every node, write the PIDs and ports to STATE_FILE
#                                     (default target/redis-cluster-test.env), and set
#                                     REDIS_CLUSTER_URLS (comma-separated seed URLs)
#   redis_cluster_stop  [STATE_FILE]  stop the nodes by their PIDs (never by name) and remove
#                                     their folder
#
# Run as a command (the nodes are then re-parented to PID 1 when this script exits):
#   scripts/redis-cluster.sh start [STATE_FILE]   prints the seed URLs
#   scripts/redis-cluster.sh stop  [STATE_FILE]

# shellcheck source=scripts/redis.sh
. "$(dirname "${BASH_SOURCE[0]}")/redis.sh"

redis_cluster_die() { echo "redis-cluster.sh: $*" >&2; return 1; }

# Six distinct free ports (three clients, three cluster buses), held together while chosen.
redis_cluster_ports() {
    python3 -c '
import socket
socks = []
for _ in range(6):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()'
}

redis_cluster_start() {
    local state="${1:-target/redis-cluster-test.env}" dir ports port bus pid i _ ok
    redis_install || return 1
    mkdir -p "$(dirname "$state")"
    dir="${state%.env}.d"
    rm -rf "$dir"
    mkdir -p "$dir"
    # shellcheck disable=SC2207
    ports=($(redis_cluster_ports)) || { redis_cluster_die "no free ports"; return 1; }
    : >"$state"
    printf 'REDIS_CLUSTER_DIR=%s\n' "$dir" >>"$state"
    local urls=() addrs=()
    for i in 0 1 2; do
        port="${ports[$i]}"
        bus="${ports[$((i + 3))]}"
        redis-server --bind 127.0.0.1 --port "$port" --cluster-enabled yes --cluster-port "$bus" \
            --cluster-config-file "nodes-$port.conf" --cluster-node-timeout 5000 --dir "$dir" \
            --save '' --appendonly no --daemonize no >"$dir/$port.log" 2>&1 &
        pid=$!
        printf 'REDIS_CLUSTER_PID%s=%s\n' "$i" "$pid" >>"$state"
        urls+=("redis://127.0.0.1:$port/")
        addrs+=("127.0.0.1:$port")
    done
    for port in "${ports[@]:0:3}"; do
        ok=
        for _ in $(seq 1 100); do
            if [ "$(redis-cli -p "$port" ping 2>/dev/null || true)" = PONG ]; then ok=1; break; fi
            sleep 0.1
        done
        [ -n "$ok" ] || { redis_cluster_stop "$state"; redis_cluster_die "node on port $port did not answer PING within 10 s: $(tail -n 5 "$dir/$port.log" 2>/dev/null)"; return 1; }
    done
    if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1; then
        redis_cluster_stop "$state"
        redis_cluster_die "redis-cli --cluster create failed: $(tail -n 5 "$dir/create.log")"
        return 1
    fi
    # Every node must see all slots served (the gossip takes a moment).
    for port in "${ports[@]:0:3}"; do
        ok=
        for _ in $(seq 1 150); do
            if redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; then ok=1; break; fi
            sleep 0.1
        done
        [ -n "$ok" ] || { redis_cluster_stop "$state"; redis_cluster_die "node on port $port: no cluster_state:ok within 15 s"; return 1; }
    done
    REDIS_CLUSTER_URLS="$(IFS=,; echo "${urls[*]}")"
    printf 'REDIS_CLUSTER_URLS=%s\n' "$REDIS_CLUSTER_URLS" >>"$state"
}

redis_cluster_stop() {
    local state="${1:-target/redis-cluster-test.env}" dir i
    [ -f "$state" ] || return 0
    dir="$(sed -n 's/^REDIS_CLUSTER_DIR=//p' "$state")"
    for i in 0 1 2; do
        # service_stop removes the state file: give it a copy per node.
        grep "^REDIS_CLUSTER_PID$i=" "$state" >"$state.$i" 2>/dev/null || true
        service_stop "$state.$i" "REDIS_CLUSTER_PID$i"
    done
    rm -f "$state"
    [ -n "$dir" ] && rm -rf "$dir"
}

# Run as a command rather than sourced.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    cd "$(dirname "$0")/.."
    case "${1:-}" in
        start) redis_cluster_start "${2:-target/redis-cluster-test.env}" && echo "$REDIS_CLUSTER_URLS" ;;
        stop) redis_cluster_stop "${2:-target/redis-cluster-test.env}" ;;
        *) echo "usage: scripts/redis-cluster.sh start|stop [STATE_FILE]" >&2; exit 2 ;;
    esac
fi
