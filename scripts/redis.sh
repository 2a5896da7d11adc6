#!/usr/bin/env bash
# A private redis-server for the tests, on 127.0.0.1 only.
#
#   scripts/redis.sh start [STATE_FILE]   install redis-server if missing, start it on a free
#                                         port as a child of this script's caller's session,
#                                         wait for PONG; writes PORT and PID to STATE_FILE
#                                         (default target/redis-test.env) and prints the URL
#   scripts/redis.sh stop  [STATE_FILE]   stop the server started by `start` (by its PID)
#
# No persistence (--save '' --appendonly no). The server is never started by apt: a
# policy-rc.d that exits 101 is put in place before installing, if there is none.
set -euo pipefail
cd "$(dirname "$0")/.."

cmd="${1:-}"
state="${2:-target/redis-test.env}"

die() { echo "redis.sh: $*" >&2; exit 1; }

install_redis() {
    command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
    [ "$(id -u)" = 0 ] || die "redis-server is missing and this is not root: install the redis-server package"
    if [ ! -x /usr/sbin/policy-rc.d ]; then
        # Without it the package would start a system Redis on 6379.
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
    fi
    echo "redis.sh: installing redis-server" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q redis-server >/dev/null 2>&1; then
        apt-get update -q >/dev/null
        apt-get install -y -q redis-server >/dev/null
    fi
    command -v redis-server >/dev/null 2>&1 || die "redis-server still missing after apt-get install"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
    install_redis
    mkdir -p "$(dirname "$state")"
    local port pid i log
    port="$(free_port)"
    log="${state%.env}.log"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no \
        >"$log" 2>&1 &
    pid=$!
    for i in $(seq 1 100); do
        if [ "$(redis-cli -p "$port" ping 2>/dev/null || true)" = PONG ]; then
            printf 'REDIS_PORT=%s\nREDIS_PID=%s\n' "$port" "$pid" >"$state"
            echo "redis://127.0.0.1:$port/"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || die "redis-server exited at start: $(tail -n 5 "$log")"
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    die "redis-server on port $port did not answer PING within 10 s"
}

stop() {
    [ -f "$state" ] || return 0
    # shellcheck disable=SC1090
    . "$state"
    if [ -n "${REDIS_PID:-}" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
        kill "$REDIS_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            # A zombie (state Z) is dead: PID 1 reaps it late.
            if ! kill -0 "$REDIS_PID" 2>/dev/null \
                || [ "$(awk '{print $3}' "/proc/$REDIS_PID/stat" 2>/dev/null)" = Z ]; then
                break
            fi
            sleep 0.1
        done
    fi
    rm -f "$state"
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    *) die "usage: scripts/redis.sh start|stop [STATE_FILE]" ;;
esac
