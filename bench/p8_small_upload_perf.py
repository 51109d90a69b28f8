"""Profiling tool 8 (issue 16): where httpd's CPU goes under benchmark 3's
load (10,000 uploads of 4 KiB, 16 connections, into one session, after 300
uncounted ones): user and system CPU per file of the httpd processes, from
/proc, and a `perf record -g` of them during the uploads, kept in FILE.

    /usr/bin/python3 bench/p8_small_upload_perf.py [FILE]   (/tmp/b3perf.data)
    perf report -i FILE --no-children --sort dso,sym
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import b3_many_files as B  # noqa: E402
import common as C  # noqa: E402

FILES = 10000


def user_sys_ticks(pids):
    u = s = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            u += int(fields[11])
            s += int(fields[12])
        except OSError:
            pass
    return u, s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/b3perf.data"
    srv = C.BenchServer()
    srv.start()
    try:
        ff = os.path.join(srv.dir, "fields.txt")
        mk = os.path.join(srv.dir, "markers")
        warm, _ = B._leg_args(srv, "ours", ff, "w")
        C.wrk_batch(srv.base + "/", "upload.lua", 300, 16, mk, args=warm, limit_s=60)
        args, _ = B._leg_args(srv, "ours", ff, "r1")
        pids = [srv.pid] + srv.children()
        u0, s0 = user_sys_ticks(pids)
        perf = subprocess.Popen(["perf", "record", "-q", "-g", "-F", "999", "-o", out,
                                 "-p", ",".join(map(str, pids))],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # perf attached
        r = C.wrk_batch(srv.base + "/", "upload.lua", FILES, 16, mk, args=args, limit_s=300)
        perf.send_signal(2)
        perf.wait()
        u1, s1 = user_sys_ticks(pids)
        us = 1e6 / os.sysconf("SC_CLK_TCK") / FILES
        print(f"{r['ok']} files in {r['elapsed_s']:.2f} s; httpd CPU per file: user "
              f"{(u1 - u0) * us:.0f} us, system {(s1 - s0) * us:.0f} us; profile in {out}")
    finally:
        srv.cleanup()


if __name__ == "__main__":
    main()
