#!/bin/sh
# A private Ceph radosgw on loopback (one monitor, one memstore OSD, no
# cephx, pools of size 1) under DIR, for tests and for trying the S3
# storage by hand. Needs the Ceph packages scripts/install-deps.sh installs.
#   scripts/radosgw-local.sh start DIR [PORT]   prints {"endpoint", "access_key", "secret_key", ...}
#   scripts/radosgw-local.sh stop DIR           stops its daemons and removes DIR
#   scripts/radosgw-local.sh stats DIR          resident memory and disk use
# The implementation is tests/us_testkit/radosgw.py, which the test suite uses too.
set -eu
exec /usr/bin/python3 "$(dirname "$0")/../tests/us_testkit/radosgw.py" "$@"
