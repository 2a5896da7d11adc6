#!/usr/bin/env bash
# A private redis-server for the tests, on 127.0.0.1 only, with no persistence.
#
# Sourced (what scripts/test.sh does), so the server is a child of the caller's shell:
#   . scripts/redis.sh
#   redis_start [STATE_FILE]   install redis-server if missing, start it on a free port,
#                              wait (bounded) for PONG, write REDIS_PORT/REDIS_PID to
#                              STATE_FILE (default target/redis-test.env), and set
#                              REDIS_PORT, REDIS_PID and REDIS_URL in the caller
#   redis_stop  [STATE_FILE]   stop it by its PID (never by name)
#
# Run as a command (the server is then re-parented to PID 1 when this script exits):
#   scripts/redis.sh start [STATE_FILE]   prints the URL
#   scripts/redis.sh stop  [STATE_FILE]
#
# apt never starts a system Redis: a policy-rc.d that exits 101 is put in place before
# installing, if there is none.

# shellcheck source=scripts/service.sh
. "$(dirname "${BASH_SOURCE[0]}")/service.sh"

redis_die() { echo "redis.sh: $*" >&2; return 1; }

redis_install() {
    if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
        return 0
    fi
    [ "$(id -u)" = 0 ] || { redis_die "redis-server is missing and this is not root: install the redis-server package"; return 1; }
    if [ ! -x /usr/sbin/policy-rc.d ]; then
        # Without it the package would start a system Redis on 6379.
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
    fi
    echo "redis.sh: installing redis-server" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null 2>&1; then
        apt-get update -q >/dev/null || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null \
            || { redis_die "apt-get install redis-server failed"; return 1; }
    fi
    command -v redis-server >/dev/null 2>&1 || { redis_die "redis-server still missing after install"; return 1; }
}

redis_start() {
    local state="${1:-target/redis-test.env}" port pid log _
    redis_install || return 1
    mkdir -p "$(dirname "$state")"
    log="${state%.env}.log"
    port="$(service_free_port)" || { redis_die "no free port"; return 1; }
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no \
        >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do
        if [ "$(redis-cli -p "$port" ping 2>/dev/null || true)" = PONG ]; then
            printf 'REDIS_PORT=%s\nREDIS_PID=%s\n' "$port" "$pid" >"$state"
            REDIS_PORT="$port"
            REDIS_PID="$pid"
            REDIS_URL="redis://127.0.0.1:$port/"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            redis_die "redis-server exited at start: $(tail -n 5 "$log")"
            return 1
        fi
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    redis_die "redis-server on port $port did not answer PING within 10 s"
}

redis_stop() {
    service_stop "${1:-target/redis-test.env}" REDIS_PID
}

# Run as a command rather than sourced.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    cd "$(dirname "$0")/.."
    case "${1:-}" in
        start) redis_start "${2:-target/redis-test.env}" && echo "$REDIS_URL" ;;
        stop) redis_stop "${2:-target/redis-test.env}" ;;
        *) echo "usage: scripts/redis.sh start|stop [STATE_FILE]" >&2; exit 2 ;;
    esac
fi
