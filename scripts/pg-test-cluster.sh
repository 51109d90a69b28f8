#!/bin/bash
# A private PostgreSQL cluster for the tests: never the system service.
#   pg-test-cluster.sh start [DIR]   initdb into DIR (a new temporary directory
#                                    when omitted), start it on a free loopback
#                                    port with its socket under DIR; prints DIR
#                                    on the first line and the libpq conninfo on
#                                    the second. With US_PG_LOCALE=ll_CC.UTF-8
#                                    the server can also write its messages in
#                                    that locale's language (a database's
#                                    lc_messages): the locale is compiled under
#                                    DIR (localedef) and given to it by LOCPATH
#   pg-test-cluster.sh stop DIR      stops it and removes DIR
#   pg-test-cluster.sh restart DIR   pg_ctl restart -m fast (same options)
#   pg-test-cluster.sh up DIR        a lasting cluster for `make run STORE=pgsql`:
#                                    initdb into DIR once (durable: fsync on),
#                                    start it on the port kept in DIR/port, create
#                                    the database `uploads`; prints its conninfo
#   pg-test-cluster.sh down DIR      stops it, keeping DIR
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

# pg_ctl on the cluster in DIR, as its owner, with LOCPATH naming the locales
# compiled for its server under DIR when there are any (see start)
cluster_ctl() {
    local bin=$1 dir=$2 envs=()
    shift 2
    [ -d "$dir/locale" ] && envs=("LOCPATH=$dir/locale")
    as_owner env "${envs[@]}" "$bin/pg_ctl" -D "$dir/data" "$@"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local bin dir port
    bin=$(bindir)
    dir=${1:-$(mktemp -d "${TMPDIR:-/tmp}/us-pg-XXXXXX")}
    mkdir -p "$dir/sock"
    if [ -n "${US_PG_LOCALE:-}" ]; then
        mkdir -p "$dir/locale"
        localedef -i "${US_PG_LOCALE%%.*}" -f UTF-8 "$dir/locale/$US_PG_LOCALE" ||
            { echo "pg-test-cluster: localedef $US_PG_LOCALE failed (Debian's locales)" >&2; return 1; }
    fi
    if [ "$(id -u)" = 0 ]; then
        chown -R postgres: "$dir"
    fi
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
    # a port can be taken between the probe and the bind: try a few
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        if cluster_ctl "$bin" "$dir" -l "$dir/server.log" -w -t 30 start \
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

# a fast restart under the same options (pg_ctl keeps them in postmaster.opts)
restart() {
    local bin dir=$1
    bin=$(bindir)
    cluster_ctl "$bin" "$dir" -m fast -w -t 30 restart >/dev/null
}

up() {
    local bin dir=$1 port
    bin=$(bindir)
    mkdir -p "$dir/sock"
    [ "$(id -u)" != 0 ] || chown postgres: "$dir" "$dir/sock"
    if [ ! -d "$dir/data" ]; then
        as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale \
            >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
        free_port > "$dir/port"
    fi
    port=$(cat "$dir/port")
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/sock \
                -c idle_in_transaction_session_timeout=30s -c tcp_keepalives_idle=60" \
            >/dev/null || { tail -20 "$dir/server.log" >&2; return 1; }
    fi
    local conninfo="host=127.0.0.1 port=$port user=postgres"
    if [ -z "$(psql -X -A -t "$conninfo dbname=postgres" \
               -c "SELECT 1 FROM pg_database WHERE datname = 'uploads'")" ]; then
        psql -X -q "$conninfo dbname=postgres" -c "CREATE DATABASE uploads" >/dev/null
    fi
    echo "$conninfo dbname=uploads"
}

down() {
    local bin dir=$1
    bin=$(bindir)
    [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

case "${1:-}" in
start) shift; start "$@" ;;
up) [ $# -eq 2 ] || { echo "usage: $0 up DIR" >&2; exit 2; }; up "$2" ;;
down) [ $# -eq 2 ] || { echo "usage: $0 down DIR" >&2; exit 2; }; down "$2" ;;
restart) [ $# -eq 2 ] || { echo "usage: $0 restart DIR" >&2; exit 2; }; restart "$2" ;;
stop) [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop "$2" ;;
*) echo "usage: $0 start [DIR] | restart DIR | stop DIR | up DIR | down DIR" >&2; exit 2 ;;
esac
