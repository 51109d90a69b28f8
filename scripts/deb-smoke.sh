#!/usr/bin/env bash
# The Debian package, installed as an operator would (CI, after `make test`):
# builds it (make deb), dpkg -i, a2enmod upload_session, apache2ctl
# configtest, then runs the system's apache2 binary with the system's
# enabled modules on a free loopback port - a configuration of its own
# in a temporary directory, never the apache2 service - drives one whole
# session through it (create, upload through the presigned target, close,
# poll to FINISHED, list the files), stops it and purges the package.
# Leaves the machine as it found it. Needs root (dpkg).
#   US_DEB=build/libapache2-mod-upload-session_X_amd64.deb  tests that package
#                                                           instead of building one
set -euo pipefail
cd "$(dirname "$0")/.."

PKG=libapache2-mod-upload-session
t0=$(date +%s)
say() { echo "deb-smoke: $* ($(( $(date +%s) - t0 )) s)"; }
installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
fail() { echo "deb-smoke: $*" >&2; exit 1; }

if dpkg-query -W -f='${Status}' "$PKG" >/dev/null 2>&1; then
    # only an interrupted earlier run leaves it: the package is never kept
    say "removing $PKG left by an earlier run"
    dpkg --purge "$PKG" >/dev/null
fi

# US_DEB=path.deb: that package instead of a new build
if [ -n "${US_DEB:-}" ]; then
    DEB=$US_DEB
else
    rm -f build/${PKG}_*.deb
    make --no-print-directory deb >/dev/null
    DEB=$(ls build/${PKG}_*.deb)
fi
say "package $DEB"

D=$(mktemp -d /tmp/us-deb-smoke.XXXXXX)
chmod 755 "$D"
cleanup() {
    rc=$?
    if [ -f "$D/run/apache2.pid" ]; then
        pid=$(cat "$D/run/apache2.pid")
        /usr/sbin/apache2 -d "$D" -k stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    if dpkg-query -W -f='${Status}' "$PKG" >/dev/null 2>&1; then
        dpkg --purge "$PKG" >/dev/null || rc=1
    fi
    if [ "$rc" != 0 ] && [ -f "$D/log/error.log" ]; then tail -30 "$D/log/error.log" >&2; fi
    rm -rf "$D"
    exit "$rc"
}
trap cleanup EXIT

dpkg -i "$DEB" >/dev/null
installed "$PKG" || fail "$PKG is not installed"
[ -f /usr/lib/apache2/modules/mod_upload_session.so ] || fail "no module"
[ -x /usr/bin/us-keygen ] || fail "no us-keygen"
a2enmod -q upload_session
[ -L /etc/apache2/mods-enabled/upload_session.load ] || fail "a2enmod did not enable it"
# the system's own configuration with the module enabled
out=$(apache2ctl configtest 2>&1) || fail "apache2ctl configtest: $out"
say "installed, enabled, configtest passes"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$D/run" "$D/lock" "$D/log" "$D/state"
KEY=$(/usr/bin/us-keygen -f "$D/keys" -g Smoke -F Test -w '*' 2>/dev/null)
cat > "$D/apache2.conf" <<CONF
ServerRoot "/etc/apache2"
ServerName 127.0.0.1
Listen 127.0.0.1:$PORT
PidFile "$D/run/apache2.pid"
DefaultRuntimeDir "$D/run"
Mutex file:$D/lock default
ErrorLog "$D/log/error.log"
LogLevel info
User www-data
Group www-data
DocumentRoot "$D/state"
# the modules the system has enabled, this package's among them
IncludeOptional /etc/apache2/mods-enabled/*.load
IncludeOptional /etc/apache2/mods-enabled/*.conf
UploadSession On
UploadSessionStore sqlite3 "$D/state/store/uploads.db"
UploadSessionKeyFile "$D/keys"
UploadSessionPublicURL http://127.0.0.1:$PORT
CONF
out=$(APACHE_CONFDIR="$D" APACHE_ENVVARS=/dev/null apache2ctl configtest 2>&1) ||
    fail "configtest of the loopback instance: $out"
/usr/sbin/apache2 -d "$D" -f "$D/apache2.conf" -k start
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/api/v1/health" && break; sleep 0.1; done
say "apache2 on 127.0.0.1:$PORT"

python3 - "$PORT" "$KEY" <<'PY'
import json, sys, time, urllib.request, uuid
port, key = sys.argv[1], sys.argv[2]
base = f"http://127.0.0.1:{port}/api/v1/workspaces/smoke"
def call(method, url, body=None, ctype="application/json", auth=True):
    h = {"Content-Type": ctype} if body is not None else {}
    if auth:
        h["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
def ok(got, status):
    assert got[0] == status, got
    return json.loads(got[1]) if got[1] else None
assert ok(call("GET", f"http://127.0.0.1:{port}/api/v1/health", auth=False), 200) == {"status": "ok"}
s = ok(call("POST", f"{base}/upload_sessions", b"{}"), 201)
cfg = s["aws_prefixed_request_config"]
boundary = uuid.uuid4().hex
parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
         for k, v in cfg["fields"].items()]
parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="smoke.txt"\r\n'
             f'Content-Type: text/plain\r\n\r\n'.encode() + b"hello from the package\n" +
             f"\r\n--{boundary}--\r\n".encode())
got = call("POST", cfg["url"], b"".join(parts), f"multipart/form-data; boundary={boundary}", auth=False)
assert got[0] == 204, got
assert ok(call("PUT", f"{base}/upload_sessions/{s['session_id']}", b"{}"), 204) is None
deadline = time.time() + 60
while True:
    st = ok(call("GET", f"{base}/upload_sessions/{s['session_id']}"), 200)
    if st["ingestion_status"]["finished_files"] == 1:
        break
    assert st["ingestion_status"]["failed_files"] == 0 and time.time() < deadline, st
    time.sleep(0.2)
files = ok(call("GET", f"{base}/upload_sessions/{s['session_id']}/files"), 200)
assert [(f["name"], f["ingestion_status"]) for f in files["data"]] == [("smoke.txt", "FINISHED")], files
listed = ok(call("GET", f"{base}/files"), 200)
assert [f["name"] for f in listed["data"]] == ["smoke.txt"] and listed["total"] == 1, listed
got = call("GET", f"{base}/files/{listed['data'][0]['file_id']}")
assert got == (200, b"hello from the package\n"), got
doc = ok(call("GET", f"http://127.0.0.1:{port}/api/v1/openapi.json", auth=False), 200)
assert doc["openapi"] == "3.1.0", doc
print("deb-smoke: one session: created, uploaded, closed, FINISHED, listed")
PY

# the pid before the stop: httpd removes its pid file as it shuts down
pid=$(cat "$D/run/apache2.pid")
/usr/sbin/apache2 -d "$D" -f "$D/apache2.conf" -k stop
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then fail "apache2 ($pid) did not stop"; fi
if grep -E "\[(\w+:)?(error|crit|alert|emerg)\]" "$D/log/error.log"; then
    echo "deb-smoke: errors in the server's log" >&2; exit 1
fi
dpkg --purge "$PKG" >/dev/null
if dpkg-query -W -f='${Status}' "$PKG" >/dev/null 2>&1; then fail "$PKG still known to dpkg"; fi
for f in /etc/apache2/mods-enabled/upload_session.load /etc/apache2/mods-available/upload_session.load \
         /etc/apache2/mods-available/upload_session.conf /usr/lib/apache2/modules/mod_upload_session.so \
         /usr/bin/us-keygen /var/lib/apache2/module/enabled_by_admin/upload_session; do
    if [ -e "$f" ]; then fail "$f left behind"; fi
done
say "stopped, purged; passed in $(( $(date +%s) - t0 )) s"
