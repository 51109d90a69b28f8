#!/bin/bash
# A private PostgreSQL cluster for the tests: never the system service.
#   pg-test-cluster.sh start [DIR]   initdb into DIR (a new temporary directory
#                                    when omitted), start it on a free loopback
#                                    port with its socket under DIR; prints DIR
#                                    on the first line and the libpq conninfo on
#                                    the second
#   pg-test-cluster.sh stop DIR      stops it and removes DIR
# initdb refuses to run as root: as root the cluster belongs to the user
# `postgres` (Debian's postgresql package creates it). The cluster's
# superuser is `postgres` whoever runs it; every connection is trusted, and
# durability is off (fsync): test data only.
set -euo pipefail

bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    done
    command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
    echo "pg-test-cluster: no initdb found (install Debian's postgresql)" >&2
    return 1
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local bin dir port
    bin=$(bindir)
    dir=${1:-$(mktemp -d "${TMPDIR:-/tmp}/us-pg-XXXXXX")}
    mkdir -p "$dir/sock"
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres: "$dir"
    fi
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
    # a port can be taken between the probe and the bind: try a few
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock -c fsync=off \
                -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
            >/dev/null 2>&1; then
            echo "$dir"
            echo "host=127.0.0.1 port=$port user=postgres dbname=postgres"
            return 0
        fi
    done
    cat "$dir/server.log" >&2 || true
    return 1
}

stop() {
    local bin dir=$1
    bin=$(bindir)
    [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}

case "${1:-}" in
start) shift; start "$@" ;;
stop) [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop "$2" ;;
*) echo "usage: $0 start [DIR] | stop DIR" >&2; exit 2 ;;
esac
