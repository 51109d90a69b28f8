"""A/B of module builds on benchmark 2's upload (not part of `make bench`).

    python3 bench/ab_big_upload.py A.so B.so

One server per build, both running at once (started before the first leg);
an MiB-sized file of random bytes (MIB, default 256) in the page cache;
ROUNDS rounds (default 3), each uploading it once to every build in an
order reversed every other round, plus mod_dav's PUT (into A's server) and
`dd conv=fsync` of the same file: a drift in the machine's load hits every
variant alike. `sync` before each leg. Prints each leg's wall time, httpd CPU
and the load average, then per variant the median MiB/s and its ratio to
A, mod_dav and dd.
"""

import os
import statistics
import subprocess
import sys
import time

import common as C

MIB = int(os.environ.get("MIB", "256"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))


def upload(srv, src):
    cfg = srv.create_session("ab")
    a = cfg["aws_prefixed_request_config"]
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect:"]
    for k, v in a["fields"].items():
        cmd += ["--form-string", f"{k}={v}"]
    cmd += ["-F", f"file=@{src};filename=big.bin;type=application/octet-stream", a["url"]]
    return cmd, os.path.join(srv.state, "data", "sessions", cfg["session_id"])


def leg(kind, srv, src, work):
    subprocess.run(["sync"], check=True)
    cleanup = None
    if kind == "dav":
        cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect:",
               "-T", src, f"http://127.0.0.1:{srv.port}/dav/ab.bin"]
    elif kind == "dd":
        out = os.path.join(work, "dd.out")
        cmd = ["dd", f"if={src}", f"of={out}", "bs=1M", "conv=fsync", "status=none"]
        cleanup = out
    else:
        cmd, sdir = upload(srv, src)
    with C.CpuMeter(srv if kind != "dd" else None) as m:
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.perf_counter() - t0
    if r.returncode != 0 or (kind != "dd" and r.stdout.strip() not in ("201", "204")):
        raise RuntimeError(f"{kind}: {r.stdout!r} {r.stderr[-300:]!r}")
    if kind not in ("dav", "dd"):
        for n in os.listdir(sdir) if os.path.isdir(sdir) else []:
            os.unlink(os.path.join(sdir, n))
    if cleanup:
        os.unlink(cleanup)
    return dt, (m.httpd_s if kind != "dd" else 0.0)


def main():
    sos = sys.argv[1:]
    if len(sos) < 2:
        sys.exit(__doc__)
    servers = {}
    for so in sos:
        C.MODULE_SO = so
        servers[so] = C.BenchServer()
        servers[so].start()
    try:
        first = servers[sos[0]]
        src = os.path.join(first.dir, "ab.bin")
        with open(src, "wb") as f:
            for _ in range(MIB):
                f.write(os.urandom(1 << 20))
        subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)
        kinds = sos + ["dav", "dd"]
        times = {k: [] for k in kinds}
        for rnd in range(ROUNDS):
            for k in (kinds if rnd % 2 == 0 else kinds[::-1]):
                srv = servers.get(k, first)
                dt, cpu = leg(k, srv, src, first.dir)
                times[k].append(dt)
                load = open("/proc/loadavg").read().split()[0]
                print(f"round {rnd} {os.path.basename(k):24s} {dt:6.2f} s  "
                      f"{MIB / dt:7.0f} MiB/s  httpd CPU {cpu:5.2f} s  load {load}", flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        for k in kinds:
            print(f"{os.path.basename(k):24s} median {MIB / med[k]:6.0f} MiB/s"
                  f"  vs A {med[sos[0]] / med[k]:.2f}  vs dav {med['dav'] / med[k]:.2f}"
                  f"  vs dd {med['dd'] / med[k]:.2f}")
    finally:
        for srv in servers.values():
            srv.cleanup()


if __name__ == "__main__":
    main()
