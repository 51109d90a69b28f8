#!/bin/bash
# Runs a command with one private radosgw for all of it (scripts/radosgw-local.sh):
# US_RGW_INFO names its endpoint.json ({"endpoint", "access_key", "secret_key"}),
# which the s3 unit test and the integration suite use instead of starting their
# own. Fails when radosgw cannot start; stops it afterwards.
#   scripts/with-radosgw.sh make unit integration
set -euo pipefail
dir=$(mktemp -d "${TMPDIR:-/tmp}/us-rgw-XXXXXX")
stop() { /usr/bin/python3 "$(dirname "$0")/../tests/us_testkit/radosgw.py" stop "$dir"; }
trap stop EXIT
if ! info=$(/usr/bin/python3 "$(dirname "$0")/../tests/us_testkit/radosgw.py" start "$dir"); then
    echo "with-radosgw: radosgw did not start" >&2
    exit 1
fi
echo "with-radosgw: radosgw on $(/usr/bin/python3 -c 'import json,sys; i=json.loads(sys.argv[1]); print(i["endpoint"], "started in", i["startup_seconds"], "s")' "$info")"
export US_RGW_INFO="$dir/endpoint.json"
"$@"
