"""CPU and time of our 1 GiB upload alone (not part of `make bench`).

    REPS=3 python3 bench/big_upload_cpu.py       # PERF=1: perf record -g of the children

The same upload as benchmark 2 (curl -F of the 1 GiB source file into a new
session), REPS times on one server, `sync` before each: prints the wall time,
httpd's CPU time, curl's, and how busy the machine was. The blob is deleted
after each repetition. With PERF=1 the children are recorded into
/tmp/perf.big_upload.data (`perf report -i ... --no-children --sort sym`).
"""

import os
import subprocess
import sys
import time

import common as C


def main():
    src = os.path.join(C.WORK, "us-bench-1GiB.bin")
    if not os.path.exists(src):
        sys.exit(f"{src} is missing: run `BENCH_ONLY=b2 bash bench/run.sh` once to create it")
    subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)
    srv = C.BenchServer()
    try:
        srv.start()
        for _ in range(int(os.environ.get("REPS", "1"))):
            cfg = srv.create_session("cpu")
            a = cfg["aws_prefixed_request_config"]
            cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect:"]
            for k, v in a["fields"].items():
                cmd += ["--form-string", f"{k}={v}"]
            cmd += ["-F", f"file=@{src};filename=big.bin;type=application/octet-stream", a["url"]]
            subprocess.run(["sync"], check=True)
            perf = None
            if os.environ.get("PERF"):
                pids = ",".join(map(str, srv.children()))
                perf = subprocess.Popen(["perf", "record", "-F", "1000", "-g", "-o",
                                         "/tmp/perf.big_upload.data", "-p", pids],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(0.5)
            with C.CpuMeter(srv) as m:
                t0 = time.perf_counter()
                out = subprocess.run(cmd, capture_output=True, text=True).stdout
                dt = time.perf_counter() - t0
            if perf:
                perf.send_signal(2)
                perf.wait()
            print(f"{dt:.2f} s (HTTP {out}), httpd CPU {m.httpd_s:.2f} s, curl {m.client_s:.2f} s, "
                  f"machine {m.busy_pct:.0f}% busy, other {m.foreign_pct:.0f}%", flush=True)
            sdir = os.path.join(srv.state, "data", "sessions", cfg["session_id"])
            for n in os.listdir(sdir) if os.path.isdir(sdir) else []:
                os.unlink(os.path.join(sdir, n))
    finally:
        srv.cleanup()


if __name__ == "__main__":
    main()
