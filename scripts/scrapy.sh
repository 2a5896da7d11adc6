#!/usr/bin/env bash
# The real Scrapy and scrapy-redis, for the interop tests (tests/redis_scrapy.rs): a venv
# under target/scrapy-venv with pinned versions from PyPI. Sourced by scripts/test.sh:
#   . scripts/scrapy.sh
#   scrapy_install     create the venv (once; a warm run finds the marker and installs
#                      nothing); sets and exports ARACHNE_TEST_SCRAPY_PYTHON to its python
# or run as `scripts/scrapy.sh install`.

SCRAPY_VERSION=2.19.0
SCRAPY_REDIS_VERSION=0.9.1

scrapy_die() { echo "scrapy.sh: $*" >&2; return 1; }

scrapy_install() {
    local venv=target/scrapy-venv
    local want="scrapy==$SCRAPY_VERSION scrapy-redis==$SCRAPY_REDIS_VERSION"
    local marker="$venv/.arachne-installed"
    if [ ! -f "$marker" ] || [ "$(cat "$marker")" != "$want" ]; then
        command -v python3 >/dev/null 2>&1 || { scrapy_die "python3 is missing: install python3 (and python3-venv)"; return 1; }
        rm -rf "$venv"
        mkdir -p target
        python3 -m venv "$venv" || { scrapy_die "python3 -m venv failed (install python3-venv)"; return 1; }
        echo "scrapy.sh: installing $want into $venv" >&2
        # shellcheck disable=SC2086
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $want \
            || { scrapy_die "pip install $want failed"; return 1; }
        echo "$want" >"$marker"
    fi
    ARACHNE_TEST_SCRAPY_PYTHON="$(cd "$venv/bin" && pwd)/python"
    export ARACHNE_TEST_SCRAPY_PYTHON
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    cd "$(dirname "$0")/.."
    case "${1:-}" in
        install) scrapy_install && echo "$ARACHNE_TEST_SCRAPY_PYTHON" ;;
        *) echo "usage: $0 install" >&2; exit 2 ;;
    esac
fi
