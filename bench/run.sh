#!/usr/bin/env bash
# bench/run.sh - runs the benchmarks of BENCHMARKS.md and prints, for each,
# our figure, the baseline's figure from the same run, their ratio and the
# target. Never part of `make test`.
#
#   bash bench/run.sh                 full run (~20-30 min on 2 cores)
#   BENCH_QUICK=1 bash bench/run.sh   short run (~3-4 min)
#   BENCH_ONLY="b1 b3" bash bench/run.sh   some of b1 b2 b3 b9 b4 b6 b10 (b4 = benchmarks 4
#                                     and 5; b9: the disk's own pace for b3's files, after b3;
#                                     b6: PostgreSQL vs SQLite API; b10: PostgreSQL ingestion
#                                     on 1 and 3 nodes, growth - both issue 12);
#                                     b7 (GET /files with a filter, SQLite and PostgreSQL,
#                                     issue 14) and b8 (1 GiB presigned POST into radosgw vs
#                                     curl SigV4 PUT, issue 13) and b12 (s3 storage: 10,000-file
#                                     ingestion beside radosgw's copy pace, 1 GiB download vs a
#                                     direct GET, issue 13) only when named
#
# Other knobs: BENCH_RESULTS (JSON lines file, default /tmp/us-bench-results-<time>.jsonl),
# BENCH_KEEP=1 (keep server directories), BENCH_MAX_FOREIGN (default 20: a
# measurement during which other processes used more than this % of the CPU
# is repeated), BENCH_TRIES (attempts at most, default 3; 2 when quick).
#
# Needs: build/mod_upload_session.so (make; the bench tools are built here), wrk, curl, Debian's apache2
# (event MPM, mod_dav, mod_dav_fs, mod_mime) and /usr/bin/python3 with httpx and pytest.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
so="$top/build/mod_upload_session.so"
quick=${BENCH_QUICK:-0}
only=${BENCH_ONLY:-b1 b2 b3 b9 b4 b6 b10}

missing=""
for cmd in wrk curl dd /usr/sbin/apache2; do
    command -v "$cmd" >/dev/null 2>&1 || missing="$missing $cmd"
done
"$py" -c 'import httpx' 2>/dev/null || missing="$missing python3-httpx"
# bench/common.py starts its httpd through tests/us_testkit/server.py, which imports pytest
"$py" -c 'import pytest' 2>/dev/null || missing="$missing python3-pytest"
if [ -n "$missing" ]; then
    echo "bench: missing:$missing (Debian: apt-get install -y wrk curl apache2 python3-httpx python3-pytest)" >&2
    exit 2
fi
if [ ! -f "$so" ]; then
    echo "bench: $so not built (run make first)" >&2
    exit 2
fi
# b9's disk program and b1's bound (LD_PRELOAD) are built here when missing,
# so a BENCH_ONLY run straight after `make` measures them too
if ! make -s -C "$top" bench-tools >/dev/null; then
    echo "bench: make bench-tools failed" >&2
    exit 2
fi

work=$(mktemp -d /tmp/us-bench-XXXXXX)
chmod 755 "$work"
stamp=$(date +%Y%m%d-%H%M%S)
results=${BENCH_RESULTS:-/tmp/us-bench-results-$stamp.jsonl}
: > "$results"
cleanup() {
    # a benchmark stopped by its time limit may leave its httpd behind
    for pidf in "$work"/us-bench-srv-*/httpd.pid; do
        [ -f "$pidf" ] || continue
        d=$(dirname "$pidf")
        if kill -0 "$(cat "$pidf")" 2>/dev/null; then
            /usr/sbin/apache2 -d "$d" -f "$d/httpd.conf" -k stop 2>/dev/null
            sleep 1
        fi
    done
    if [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM

# A private copy of the module: `make` rewrites build/mod_upload_session.so
# in place, which crashes any httpd that has it mapped. Copy a file that did
# not change for 2 s.
for _ in $(seq 1 60); do
    m1=$(stat -c %Y.%s "$so")
    if [ $(( $(date +%s) - $(stat -c %Y "$so") )) -ge 2 ]; then
        cp "$so" "$work/mod_upload_session.so"
        [ "$(stat -c %Y.%s "$so")" = "$m1" ] && break
    fi
    sleep 1
done
chmod 755 "$work/mod_upload_session.so"

export BENCH_QUICK=$quick BENCH_WORK=$work BENCH_RESULTS=$results \
       BENCH_MODULE=$work/mod_upload_session.so
export PYTHONDONTWRITEBYTECODE=1

t_start=$(date +%s)
echo "== mod_upload_session benchmarks ($([ "$quick" = 1 ] && echo quick || echo full)), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "   commit $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')" \
     "$( [ -n "$(git -C "$top" status --porcelain --untracked-files=no 2>/dev/null)" ] && echo '(working tree has uncommitted changes)')"
echo "   module sha256 $(sha256sum "$BENCH_MODULE" | cut -c1-16)… built $(date -u -r "$so" '+%H:%M:%S UTC')"
echo "   machine: $(nproc) CPUs, $(free -h | awk '/^Mem:/{print $2}') RAM, $(uname -sr)"
echo "   disk:    $(df -hT "$work" | tail -1)"
echo "   load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min)"
echo "   results: $results"

# per benchmark: script, time limit (s) full / quick
declare -A script=([b1]=b1_api.py [b2]=b2_big_upload.py [b3]=b3_many_files.py [b9]=b9_disk_small_files.py [b4]=b4_ingest_growth.py [b6]=b6_pgsql_api.py [b7]=b7_filter.py [b8]=b8_s3_direct_upload.py [b12]=b12_s3_ingest_download.py [b10]=b10_cluster.py)
declare -A limit=([b1]=2100 [b2]=300 [b3]=300 [b9]=300 [b4]=1500 [b6]=420 [b7]=900 [b8]=900 [b12]=900 [b10]=1500)
declare -A qlimit=([b1]=900 [b2]=120 [b3]=150 [b9]=120 [b4]=300 [b6]=240 [b7]=900 [b8]=300 [b12]=300 [b10]=600)
failed=""
for b in $only; do
    [ -n "${script[$b]:-}" ] || { echo "bench: unknown benchmark $b" >&2; exit 2; }
    lim=${limit[$b]}
    [ "$quick" = 1 ] && lim=${qlimit[$b]}
    echo
    echo "== $b: ${script[$b]} (at most ${lim} s)"
    t0=$(date +%s)
    # its own process group: a time-out takes wrk and curl with it
    timeout --kill-after=20 "$lim" "$py" "$top/bench/${script[$b]}" || failed="$failed $b"
    echo "== $b took $(( $(date +%s) - t0 )) s"
done

echo
echo "== results (ratio = ours / baseline; times converted to throughput)"
"$py" "$top/bench/summary.py" "$results"
echo
echo "total run time: $(( $(date +%s) - t_start )) s; results: $results"
if [ -n "$failed" ]; then
    echo "bench: failed:$failed" >&2
    exit 1
fi
