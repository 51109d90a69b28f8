"""Benchmark 12 (issue #13): ingestion and download with s3 storage, each
beside what bounds it, in one run on one private radosgw.

1. Ingestion: N files of 1 KiB (default 10,000; 2,000 with BENCH_QUICK=1)
   uploaded through the module (UploadSessionStorage s3: the module writes
   each into the bucket) into one session, closed, its status polled every
   20 ms until every file is decided; the figure is files / (close to
   complete). Target >= 1,000 files/s. Beside it, same run:
   - what radosgw allows one worker: the pace of the two requests that
     publishing a file asks of it (CopyObject pinned with
     x-amz-copy-source-if-match, then DeleteObject of the source), sent one
     after the other over one keep-alive connection as the worker sends
     them, for 1,000 objects of 1 KiB;
   - the same ingestion with posix storage (info).
2. Download: one workspace file of SIZE (default 1 GiB; 64 MiB when quick),
   sent with POST /files, then fetched REPS times (default 3) through
   GET /files/{id} and straight from radosgw with curl's SigV4, alternating;
   medians; ratio = direct time / module time (target >= 0.8).

    /usr/bin/python3 bench/b12_s3_ingest_download.py [FILES] [SIZE_MIB] [REPS]
    BENCH_ONLY=b12 bash bench/run.sh

Needs build/ (make), wrk, curl, Ceph (scripts/install-deps.sh). Not part of
`make test`.
"""

import datetime
import hashlib
import hmac
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

import common as C
from us_testkit.radosgw import Radosgw

FILES = int(sys.argv[1]) if len(sys.argv) > 1 else (2000 if C.QUICK else 10000)
SIZE = (int(sys.argv[2]) if len(sys.argv) > 2 else (64 if C.QUICK else 1024)) << 20
REPS = int(sys.argv[3]) if len(sys.argv) > 3 else (1 if C.QUICK else 3)
PACE_N = 300 if C.QUICK else 1000
BUCKET = "us-it"
WS = "b12"


class Signer:
    """SigV4 with UNSIGNED-PAYLOAD for bodiless requests: little client work
    beside radosgw's, so the pace measured is radosgw's."""

    def __init__(self, endpoint, access, secret, region="us-east-1"):
        u = urllib.parse.urlsplit(endpoint)
        self.host = f"{u.hostname}:{u.port}"
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        self.access, self.secret, self.region = access, secret, region

    def _key(self, day):
        k = hmac.new(("AWS4" + self.secret).encode(), day.encode(), hashlib.sha256).digest()
        for part in (self.region, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        return k

    def request(self, method, path, headers=None, body=b""):
        now = datetime.datetime.now(datetime.timezone.utc)
        amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        h = {"host": self.host, "x-amz-date": amz, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}
        h.update({k.lower(): v for k, v in (headers or {}).items()})
        names = sorted(h)
        canon = "\n".join([method, urllib.parse.quote(path, safe="/-_.~"), "",
                           "".join(f"{n}:{h[n].strip()}\n" for n in names), ";".join(names),
                           "UNSIGNED-PAYLOAD"])
        scope = f"{day}/{self.region}/s3/aws4_request"
        sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope,
                         hashlib.sha256(canon.encode()).hexdigest()])
        sig = hmac.new(self._key(day), sts.encode(), hashlib.sha256).hexdigest()
        h["authorization"] = (f"AWS4-HMAC-SHA256 Credential={self.access}/{scope}, "
                              f"SignedHeaders={';'.join(names)}, Signature={sig}")
        self.conn.request(method, path, body=body, headers=h)
        # radosgw writes a copy's answer in two pieces and Nagle holds the
        # second until the first is acknowledged: without a quick ACK every
        # copy on a kept-alive connection waits out a delayed ACK (~40 ms)
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        r = self.conn.getresponse()
        return r.status, r.getheaders(), r.read()


def radosgw_publish_pace(rgw):
    """Copy-if-match then delete, one file after the other: files/s."""
    s = Signer(rgw.endpoint, rgw.access_key, rgw.secret_key)
    etags = []
    for i in range(PACE_N):
        st, hd, body = s.request("PUT", f"/{BUCKET}/pace/src/{i}", body=os.urandom(1024))
        assert st == 200, (st, body[:300])
        etags.append(dict((k.lower(), v) for k, v in hd)["etag"])
    t0 = time.monotonic()
    for i in range(PACE_N):
        st, _, body = s.request("PUT", f"/{BUCKET}/pace/dst/{i}", headers={
            "x-amz-copy-source": f"/{BUCKET}/pace/src/{i}",
            "x-amz-copy-source-if-match": etags[i]})
        assert st == 200, (st, body[:300])
        st, _, body = s.request("DELETE", f"/{BUCKET}/pace/src/{i}")
        assert st == 204, (st, body[:300])
    took = time.monotonic() - t0
    for i in range(PACE_N):
        s.request("DELETE", f"/{BUCKET}/pace/dst/{i}")
    return PACE_N / took


def ingest(srv, n, tag):
    """Uploads n files into one session, closes it; files/s from close to done."""
    cfg = srv.create_session(WS)
    sid, a = cfg["session_id"], cfg["aws_prefixed_request_config"]
    ff = os.path.join(srv.dir, f"fields-{tag}.txt")
    C.write_fields_file(ff, a["fields"])
    r = C.wrk_batch(srv.base + "/", "upload.lua", n, 16, os.path.join(srv.dir, "mk-" + tag),
                    args=("s3", srv.url_path(a["url"]), ff, 1024, tag), limit_s=600)
    if r["ok"] != n:
        raise RuntimeError(f"upload {tag}: {r['ok']} of {n} ok, {r['failed']} failed")
    C.log(f"  {tag}: uploaded {n} files in {r['elapsed_s']:.1f} s")
    C.wait_quiet(3)
    t0 = time.monotonic()
    srv.close_session(WS, sid)
    while True:
        st = srv.status(WS, sid)["ingestion_status"]
        if st["finished_files"] + st["failed_files"] >= n:
            break
        if time.monotonic() - t0 > 900:
            raise RuntimeError(f"{tag}: not ingested in 900 s: {st}")
        time.sleep(0.02)
    took = time.monotonic() - t0
    if st["failed_files"]:
        raise RuntimeError(f"{tag}: {st['failed_files']} files failed")
    return n / took


def curl_time(args):
    t0 = time.monotonic()
    p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                        *args], capture_output=True, text=True, timeout=1800)
    return p.stdout.split(), time.monotonic() - t0


def download(srv, rgw, src):
    p = subprocess.run(["curl", "-s", "-H", f"Authorization: Bearer {srv.key}",
                        "-F", f"file=@{src};filename=big.bin", f"{srv.api}{WS}/files"],
                       capture_output=True, text=True, timeout=1800)
    try:
        body = json.loads(p.stdout)
    except ValueError:
        raise RuntimeError(f"POST /files: {p.stdout[:300]} {p.stderr[:300]}")
    fid = body.get("file_id") or body.get("id")
    if not fid:
        raise RuntimeError(f"POST /files answered {body}")
    key = f"/{BUCKET}/{srv.s3_prefix}/files/{fid}"
    sigv4 = ["--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
             f"{rgw.access_key}:{rgw.secret_key}", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
    times = {"module": [], "direct": []}
    for rep in range(REPS):
        order = ("module", "direct") if rep % 2 == 0 else ("direct", "module")
        for kind in order:
            if kind == "module":
                out, took = curl_time(["-H", f"Authorization: Bearer {srv.key}",
                                       f"{srv.api}{WS}/files/{fid}"])
            else:
                out, took = curl_time([*sigv4, f"{rgw.endpoint}{key}"])
            if out != ["200", str(SIZE)]:
                raise RuntimeError(f"download {kind}: {out}")
            times[kind].append(took)
            C.log(f"  download {kind} #{rep + 1}: {took:.2f} s "
                  f"({SIZE / took / (1 << 20):.0f} MiB/s)")
    return statistics.median(times["module"]), statistics.median(times["direct"])


def main():
    work = tempfile.mkdtemp(prefix="us-bench-b12-")
    rgw = Radosgw(os.path.join(work, "rgw"), memstore_bytes=3 * SIZE + (1 << 30))
    rgw.start()
    os.environ["US_RGW_INFO"] = os.path.join(work, "rgw", "endpoint.json")
    s = Signer(rgw.endpoint, rgw.access_key, rgw.secret_key)
    st, _, body = s.request("PUT", f"/{BUCKET}")
    assert st in (200, 409), (st, body[:300])
    servers = []
    try:
        pace = radosgw_publish_pace(rgw)
        C.log(f"radosgw: copy-if-match + delete, one after the other: {pace:.0f} files/s")
        rates = {}
        for storage in ("s3", "posix"):
            srv = C.BenchServer(storage=storage, extra=[f"UploadSessionMaxFileSize {SIZE}",
                                                        "UploadSessionMaxFilesPerSession 100000"])
            servers.append(srv)
            srv.start()
            rates[storage] = ingest(srv, FILES, f"{storage}-ingest")
            C.log(f"  {storage}: {FILES} files ingested at {rates[storage]:.0f} files/s")
            if storage == "s3":
                src = os.path.join(work, "big.bin")
                with open(src, "wb") as f:
                    block = os.urandom(1 << 20)
                    for i in range(SIZE >> 20):
                        f.write(i.to_bytes(8, "little") + block[8:])
                mod, direct = download(srv, rgw, src)
                os.unlink(src)
            srv.cleanup()
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        C.record(12, f"s3 ingest {FILES} files, 1 session", rates["s3"], unit="files/s",
                 target=1000, target_of="ours",
                 note=f"radosgw's own pace for one worker's copy+delete: {pace:.0f} files/s; "
                      f"load average {load}")
        C.record(12, "s3 ingest / radosgw copy+delete pace (info)", rates["s3"], pace,
                 unit="files/s", note="what one worker can ask of radosgw, one file after another")
        C.record(12, f"ingest {FILES} files, s3 / posix storage (info)", rates["s3"],
                 rates["posix"], unit="files/s")
        C.record(12, f"download {SIZE >> 20} MiB, module vs direct GET", SIZE / mod / (1 << 20),
                 SIZE / direct / (1 << 20), unit="MiB/s", ratio=direct / mod, target=0.8, note=f"medians of {REPS} alternating pairs; "
                                               f"load average {load}")
    finally:
        for srv in servers:
            srv.stop()
        rgw.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    C.main_guard(main)
