#!/usr/bin/env bash
# Runs httpd with the module from the build tree; all state under ./run/.
#   run-httpd.sh foreground|start|stop [PORT]
# STORE=pgsql: the store is a PostgreSQL cluster under ./run/pg (started
# here, stopped with the server); otherwise SQLite in ./run/state (with
# STORAGE=s3: ./run/state-s3, database uploads_s3 on PostgreSQL).
# STORAGE=s3: the files are objects in bucket "uploads" of a private radosgw
# under ./run/rgw (scripts/radosgw-local.sh: started here unless it answers
# already, stopped with the server; its objects live in its memory, so a stop
# loses them); otherwise files under the data directory. S3_DIRECT=On with
# it: sessions answer a presigned POST into the bucket itself.
set -eu

mode=${1:-foreground}
port=${2:-${PORT:-8080}}
store=${STORE:-sqlite}
storage=${STORAGE:-posix}
# S3_DIRECT: On or Off as the directive takes it; 1/0, yes/no, true/false too
case "${S3_DIRECT:-Off}" in
    [Oo][Nn]|1|[Yy][Ee][Ss]|[Tt][Rr][Uu][Ee]) s3_direct=On ;;
    [Oo][Ff][Ff]|0|[Nn][Oo]|[Ff][Aa][Ll][Ss][Ee]|"") s3_direct=Off ;;
    *) echo "S3_DIRECT must be On or Off, not '$S3_DIRECT'" >&2; exit 2 ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
run="$top/run"
conf="$run/httpd.conf"
modules=$(apxs -q LIBEXECDIR 2>/dev/null || echo /usr/lib/apache2/modules)
httpd=$(command -v apache2 || command -v httpd || echo /usr/sbin/apache2)

if [ "$mode" = stop ]; then
    if [ -f "$run/httpd.pid" ] && kill -0 "$(cat "$run/httpd.pid")" 2>/dev/null; then
        "$httpd" -d "$run" -f "$conf" -k stop
        echo "stopped httpd on port $(cat "$run/port" 2>/dev/null || echo "$port")"
    else
        echo "httpd is not running"
    fi
    if [ -d "$run/pg/data" ]; then
        bash "$top/scripts/pg-test-cluster.sh" down "$run/pg"
        echo "stopped PostgreSQL in $run/pg"
    fi
    if [ -d "$run/rgw" ]; then
        sh "$top/scripts/radosgw-local.sh" stop "$run/rgw"
        echo "stopped radosgw in $run/rgw"
    fi
    exit 0
fi

mkdir -p "$run/htdocs"
chmod 755 "$run"

# As root, httpd's children run as www-data and write under ./run/: every
# directory above it must be searchable by www-data, or every request would
# fail. Refuse now, naming the directory and the fix.
if [ "$(id -u)" = 0 ]; then
    blocked=""
    d=""
    IFS=/ read -ra parts <<< "${run#/}"
    for part in "${parts[@]}"; do
        d="$d/$part"
        if ! runuser -u www-data -- test -x "$d" 2>/dev/null; then
            blocked=$d
            break
        fi
    done
    if [ -n "$blocked" ]; then
        echo "run-httpd.sh: httpd's children run as www-data, which cannot reach $run:" >&2
        echo "  it cannot search $blocked ($(stat -c '%A %U:%G' "$blocked"))." >&2
        echo "Fix: run make as a non-root user, or let www-data through (chmod o+x $blocked)," >&2
        echo "or use a checkout outside it (e.g. under /srv or /opt)." >&2
        exit 1
    fi
fi

# One API key for the developer, minted once and kept in run/env. It grants
# every workspace: run/env and run/env.key are for their owner only (also
# when an earlier run left them readable). run/keys holds only hashes; httpd
# reads it at (re)start and its children re-read it when it changes, so as
# root it is given to group www-data (0640).
for f in "$run/env" "$run/env.key"; do
    [ ! -e "$f" ] || chmod 600 "$f"
done
if [ ! -f "$run/keys" ] || [ ! -f "$run/env.key" ]; then
    (umask 077 && "$top/build/us-keygen" -f "$run/keys" -g Local -F Developer -w '*' > "$run/env.key")
fi
if [ "$(id -u)" = 0 ]; then
    chgrp www-data "$run/keys" && chmod 640 "$run/keys"
fi
key=$(cat "$run/env.key")
(umask 077 && cat > "$run/env") <<ENV
API_URL=http://127.0.0.1:$port/api/v1
API_KEY=$key
DEFAULT_WORKSPACE_NAME=default
ENV
echo "$port" > "$run/port"

storage_lines=""
fresh_bucket=""  # a new radosgw: the objects an earlier store named are gone
if [ "$storage" = s3 ]; then
    # one radosgw for as long as it answers; a dead one's directory is replaced
    info="$run/rgw/endpoint.json"
    rgw_port=""
    [ ! -f "$info" ] || rgw_port=$(/usr/bin/python3 -c 'import json,sys,urllib.parse as u; print(u.urlsplit(json.load(open(sys.argv[1]))["endpoint"]).port)' "$info")
    if [ -z "$rgw_port" ] || ! (exec 3<>"/dev/tcp/127.0.0.1/$rgw_port") 2>/dev/null; then
        [ ! -d "$run/rgw" ] || sh "$top/scripts/radosgw-local.sh" stop "$run/rgw" >/dev/null 2>&1 || true
        rm -rf "$run/rgw"
        echo "starting radosgw in $run/rgw (about 15 s)"
        sh "$top/scripts/radosgw-local.sh" start "$run/rgw" >/dev/null
        fresh_bucket=1
    fi
    endpoint=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["endpoint"])' "$info")
    (umask 077 && /usr/bin/python3 -c 'import json,sys; i=json.load(open(sys.argv[1]))
print("[default]\naws_access_key_id = %s\naws_secret_access_key = %s" % (i["access_key"], i["secret_key"]))' "$info" > "$run/s3-credentials")
    storage_lines="UploadSessionStorage s3 $endpoint uploads
UploadSessionS3CredentialsFile \"$run/s3-credentials\"
UploadSessionS3DirectUpload $s3_direct"
elif [ "$storage" != posix ]; then
    echo "STORAGE must be posix or s3, not '$storage'" >&2
    exit 2
fi

# The store names files of its storage: posix and s3 runs keep stores of
# their own, and an s3 run's store starts afresh with a new radosgw (its
# objects lived in the old one's memory).
state="$run/state"
[ "$storage" != s3 ] || state="$run/state-s3"
store_lines="UploadSessionStore sqlite3 \"$state/store.db\""
if [ "$store" = pgsql ]; then
    conninfo=$(bash "$top/scripts/pg-test-cluster.sh" up "$run/pg")
    if [ "$storage" = s3 ]; then
        admin="${conninfo% dbname=*} dbname=postgres"
        [ -z "$fresh_bucket" ] ||
            psql -X -q "$admin" -c "DROP DATABASE IF EXISTS uploads_s3 WITH (FORCE)" >/dev/null
        [ -n "$(psql -X -A -t "$admin" -c "SELECT 1 FROM pg_database WHERE datname = 'uploads_s3'")" ] ||
            psql -X -q "$admin" -c "CREATE DATABASE uploads_s3" >/dev/null
        conninfo="${conninfo% dbname=*} dbname=uploads_s3"
    fi
    mkdir -p "$state"
    store_lines="UploadSessionStore pgsql \"$conninfo\"
UploadSessionDataDir \"$state/data\"
UploadSessionSecretFile \"$state/upload_session.secret\"
UploadSessionNodeName local"
elif [ "$store" != sqlite ]; then
    echo "STORE must be sqlite or pgsql, not '$store'" >&2
    exit 2
fi

user_lines=""
if [ "$(id -u)" = 0 ]; then
    # httpd refuses to serve as root; its children run as www-data
    user_lines="User www-data
Group www-data"
fi

cat > "$conf" <<CONF
# generated by scripts/run-httpd.sh - edits are overwritten
ServerRoot "$run"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$run/httpd.pid"
ErrorLog "$run/error.log"
LogLevel info
LogFormat "%h %l %u %t \"%r\" %>s %b %D" timed
CustomLog "$run/access.log" timed
LoadModule mpm_event_module $modules/mod_mpm_event.so
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule reqtimeout_module $modules/mod_reqtimeout.so
LoadModule upload_session_module $top/build/mod_upload_session.so
# Debian's mods-available/reqtimeout.conf: a client that sends its request
# slowly does not keep a worker for long
RequestReadTimeout header=20-40,minrate=500
RequestReadTimeout body=10,minrate=500
$user_lines
DocumentRoot "$run/htdocs"
UploadSession On
$store_lines
$storage_lines
UploadSessionKeyFile "$run/keys"
UploadSessionPublicURL http://127.0.0.1:$port
CONF

if [ -f "$run/httpd.pid" ] && kill -0 "$(cat "$run/httpd.pid")" 2>/dev/null; then
    old=$(cat "$run/httpd.pid")
    "$httpd" -d "$run" -f "$conf" -k stop || true
    # a start while the old parent still ends would find it "already running"
    i=0
    while kill -0 "$old" 2>/dev/null && [ $i -lt 100 ]; do
        i=$((i + 1))
        sleep 0.2
    done
fi
# an s3 run's SQLite store named objects of the radosgw just replaced
[ -z "$fresh_bucket" ] || [ "$store" = pgsql ] || rm -rf "$state"
"$httpd" -d "$run" -f "$conf" -t >/dev/null 2>&1 || "$httpd" -d "$run" -f "$conf" -t

banner() {
    echo "mod_upload_session is serving http://127.0.0.1:$port/api/v1"
    echo "  API key:  $key"
    echo "  try:      curl -s -H 'Authorization: Bearer $key' http://127.0.0.1:$port/api/v1/workspaces/default/upload_sessions"
    echo "  SDK:      set -a; . $run/env; set +a"
    echo "  logs:     $run/error.log"
    [ "$store" != pgsql ] || echo "  store:    PostgreSQL, psql \"$conninfo\""
    [ "$storage" != s3 ] || echo "  storage:  s3, bucket uploads on radosgw $endpoint (keys in $run/s3-credentials)"
}

if [ "$mode" = foreground ]; then
    banner
    echo "  (Ctrl-C stops it)"
    exec "$httpd" -d "$run" -f "$conf" -DFOREGROUND
fi

"$httpd" -d "$run" -f "$conf" -k start
i=0
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 50 ]; then
        echo "httpd did not start; see $run/error.log" >&2
        tail -20 "$run/error.log" >&2
        exit 1
    fi
    sleep 0.2
done
banner
echo "  stop:     make stop"
