"""A/B of module builds on benchmark 3's load (not part of `make bench`).

    python3 bench/ab_many_files.py A.so B.so [dav] ...

Each leg starts a fresh server (bench/common.py's BenchServer) with one build
and uploads FILES files of 4 KiB with 16 connections into a new session (or,
for `dav`, PUTs them into a new mod_dav collection of a server running the
first build); ROUNDS rounds, the order reversed every other round. Prints
files/s, httpd CPU per file and the median latency of each leg, then each
variant's median. Server directories are kept (BENCH_KEEP=1) so that no leg
runs right after a mass deletion (see BENCHMARKS.md, Method notes, 3);
remove them afterwards, then wait six minutes before measuring again.
Env: FILES (default 4000), ROUNDS (default 2).
"""

import os
import statistics
import sys

os.environ["BENCH_KEEP"] = "1"
import common as C  # noqa: E402

FILES = int(os.environ.get("FILES", "4000"))
ROUNDS = int(os.environ.get("ROUNDS", "2"))


def leg(variant, first_so, tag):
    C.MODULE_SO = first_so if variant == "dav" else variant
    srv = C.BenchServer()
    try:
        srv.start()
        fields = os.path.join(srv.dir, "fields.txt")
        marker = os.path.join(srv.dir, "markers")
        if variant == "dav":
            coll = os.path.join(srv.dav_dir, tag)
            os.makedirs(coll)
            C.chown_www(coll)
            args = ("dav", f"/dav/{tag}/", fields, 4096, tag)
        else:
            a = srv.create_session("ab")["aws_prefixed_request_config"]
            C.write_fields_file(fields, a["fields"])
            args = ("s3", srv.url_path(a["url"]), fields, 4096, tag)
        with C.CpuMeter(srv) as m:
            r = C.wrk_batch(srv.base + "/", "upload.lua", FILES, 16, marker, args=args,
                            limit_s=300)
        rate = FILES / r["elapsed_s"]
        print(f"{os.path.basename(variant)}: {rate:.0f} files/s, httpd "
              f"{1e6 * m.httpd_s / FILES:.0f} us/file, busy {m.busy_pct:.0f}%, other "
              f"{m.foreign_pct:.0f}%, p50 {r['lat_p50_us'] / 1000:.1f} ms", flush=True)
        return rate
    finally:
        srv.cleanup()


def main():
    variants = sys.argv[1:]
    if not variants or all(v == "dav" for v in variants):
        sys.exit(__doc__)
    first_so = next(v for v in variants if v != "dav")
    rates = {v: [] for v in variants}
    for rnd in range(ROUNDS):
        for v in (variants if rnd % 2 == 0 else variants[::-1]):
            rates[v].append(leg(v, first_so, f"ab{rnd}"))
    for v, xs in rates.items():
        print(f"{os.path.basename(v)}: median {statistics.median(xs):.0f} files/s "
              f"of {[round(x) for x in xs]}")


if __name__ == "__main__":
    main()
