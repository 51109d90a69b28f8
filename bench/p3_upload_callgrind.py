#!/usr/bin/env python3
"""bench/p3_upload_callgrind.py - instructions per MiB of a big upload, ours vs mod_dav.

Runs one httpd (-X, the event MPM in one process) under valgrind's callgrind
and counts the instructions of one upload of an M MiB file of random bytes
(default 64): ours (curl -F with the session's fields, as benchmark 2 does)
and mod_dav's PUT of the same file, each in a fresh httpd. Counted: what runs
inside ap_run_process_connection (the request thread) and our upload's writer
thread (writer_main). Instruction counts do not depend on the machine's load;
the kernel's work (copies into the page cache, the disk) is not in them.
Prints Ir/MiB of each, their ratio, ours per thread (request thread,
writer, hasher: under valgrind OpenSSL's SHA-256 runs without SHA-NI, so
the hash's share is larger than on the CPU itself) and the top functions.

    /usr/bin/python3 bench/p3_upload_callgrind.py [MiB]
    P3_KEEP=1 keeps the callgrind files (their directory is printed).
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import callgrind  # noqa: E402
from common import BenchServer, log  # noqa: E402

# counted: the request thread, our upload's writer and hasher threads
TOGGLES = ("ap_run_process_connection", "writer_main", "hasher_main")


def under_callgrind(srv, kind, cmd_of):
    """[(Ir, dump)] a thread, largest first, of one upload by cmd_of()."""
    def work():
        r = subprocess.run(cmd_of(), capture_output=True, text=True)
        if r.stdout.strip() not in ("201", "204"):
            raise RuntimeError(f"{kind}: HTTP {r.stdout!r} {r.stderr[-300:]!r}")
    return callgrind.run(srv, kind, work, TOGGLES, threads=True, timeout=300)


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    srv = BenchServer(mpm="debian")
    srv.start()
    try:
        src = os.path.join(srv.dir, "p3.bin")
        with open(src, "wb") as f:
            for _ in range(mib):
                f.write(os.urandom(1 << 20))
        os.chmod(src, 0o644)
        srv.stop()

        def ours():
            # a session is made by a server outside callgrind's count: the
            # one under callgrind creates it through its API first
            cfg = srv.create_session("p3")
            a = cfg["aws_prefixed_request_config"]
            cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect:"]
            for k, v in a["fields"].items():
                cmd += ["--form-string", f"{k}={v}"]
            return cmd + ["-F", f"file=@{src};filename=big.bin;type=application/octet-stream",
                          a["url"]]

        def dav():
            return ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect:",
                    "-T", src, f"http://127.0.0.1:{srv.port}/dav/p3.bin"]

        ir = {}
        for kind, fn in (("ours", ours), ("dav", dav)):
            ir[kind] = under_callgrind(srv, kind, fn)
        o = sum(t for t, _ in ir["ours"]) / mib
        d = sum(t for t, _ in ir["dav"]) / mib
        print(f"ours {o:14,.0f} Ir/MiB   mod_dav {d:14,.0f} Ir/MiB   ours/dav {o / d:.2f}"
              f"   ({mib} MiB, the session's create included in ours)")
        print("ours per thread, Ir/MiB: "
              + ", ".join(f"{t / mib:,.0f}" for t, _ in ir["ours"] if t))
        for t, dump in ir["ours"]:
            if not t:
                continue
            print(f"\n--- ours, a thread of {t / mib:,.0f} Ir/MiB: top functions, self ---")
            for row in callgrind.annotate(dump, False, 8):
                print(row)
        print("\n--- mod_dav: top functions, self ---")
        for row in callgrind.annotate(ir["dav"][0][1], False, 12):
            print(row)
        if os.environ.get("P3_KEEP") == "1":
            print(f"\ncallgrind files in {srv.dir}")
    finally:
        if os.environ.get("P3_KEEP") != "1":
            srv.cleanup()


if __name__ == "__main__":
    log("p3: callgrind profile of a big upload, ours vs mod_dav")
    main()
