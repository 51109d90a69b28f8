#!/bin/sh
# Installs the Debian packages the build, the tests and `make run` need.
# Idempotent and quiet when everything is present; needs root (or sudo) only
# when something is missing.
#   EXTRA_PKGS="a b"  installs these too
#   WITH_RADOSGW=0    leaves out Ceph's radosgw, monitor and OSD (the
#                     S3-storage tests start a private radosgw: scripts/radosgw-local.sh)
set -eu

RADOSGW_PKGS="radosgw ceph-mon ceph-osd ceph-base ceph-common"

PKGS="make gcc apache2 apache2-dev libapr1-dev libaprutil1-dev libaprutil1-dbd-sqlite3 libsqlite3-dev
libaprutil1-dbd-pgsql libpq-dev postgresql locales libjansson-dev libcmocka-dev libssl-dev libcurl4-openssl-dev sqlite3 python3 python3-pytest python3-httpx python3-aiohttp
curl ca-certificates cppcheck clang-tidy valgrind python3-prometheus-client ${EXTRA_PKGS:-}"
if [ "${WITH_RADOSGW:-1}" = 1 ]; then PKGS="$PKGS $RADOSGW_PKGS"; fi
# the OpenAPI validator of tests/integration/test_openapi.py, where the
# distribution has it (from Debian 13 on; the test falls back to a Python
# of the machine's that carries openapi-spec-validator)
if apt-cache show python3-openapi-spec-validator >/dev/null 2>&1; then
    PKGS="$PKGS python3-openapi-spec-validator"
fi

missing=""
for p in $PKGS; do
    # dpkg-query prints "install ok installed" only for fully installed packages
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# another apt run (a CI job) may hold the lock for a while: wait for it
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
# shellcheck disable=SC2086
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
# Debian's apache2 package starts a system httpd on port 80 where it can;
# ours never needs it.
if [ -x /usr/sbin/service ] && pgrep -x apache2 >/dev/null 2>&1 && [ -f /var/run/apache2/apache2.pid ]; then
    $SUDO service apache2 stop >/dev/null 2>&1 || true
fi
# Likewise its postgresql package starts a cluster of its own; the tests
# start private ones (scripts/pg-test-cluster.sh).
case " $missing " in
*" postgresql "*)
    if [ -x /usr/sbin/service ]; then $SUDO service postgresql stop >/dev/null 2>&1 || true; fi ;;
esac
