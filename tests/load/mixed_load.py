#!/usr/bin/python3
"""Mixed load against a real httpd with the module: create / upload / status /
list / session files / close / workspace files, from 64 concurrent clients for
a bounded time (default 60 s). Fails (exit 1) on any 5xx or unexpected status,
or when the children's resident memory keeps growing after warm-up.

    /usr/bin/python3 tests/load/mixed_load.py [--seconds 60] [--clients 64] [--hostile]

--hostile mixes a few hostile clients into the normal traffic: upload-target
POSTs without credentials carrying thousands of parts with long names, a form
field trickled a few bytes at a time, POST /files with many ~1 MB meta parts,
and an upload whose key repeats ${filename} hundreds of times with a
10,000-byte file name. Their answers are reported, not judged; the normal
clients must still see no 5xx and memory must stay flat.

Everything stays on 127.0.0.1; the loop stops by itself.
"""
import argparse
import asyncio
import collections
import json
import os
import sys
import time
import uuid

import aiohttp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from us_testkit.procs import children_rss  # noqa: E402
from us_testkit.server import UploadServer  # noqa: E402


class Stats:
    def __init__(self):
        self.by_op = collections.Counter()
        self.unexpected = []
        self.latency = collections.defaultdict(list)
        self.current = {}   # the operation each client session is in

    def record(self, op, status, expected, started):
        self.by_op[(op, status)] += 1
        self.latency[op].append(time.monotonic() - started)
        if status not in expected:
            self.unexpected.append((op, status))


async def call(stats, session, op, method, url, expected, make_data=None, **kw):
    """One request. Nothing is retried: the SDK does not retry a POST, so a
    connection the server closes under a request is a transport error."""
    started = time.monotonic()
    stats.current[id(session)] = op
    if make_data:
        kw["data"] = make_data()
    async with session.request(method, url, **kw) as r:
        body = await r.read()
        stats.record(op, r.status, expected, started)
        return r.status, body


async def client(idx, base, key, deadline, stats):
    """One client's loop; transport errors are recorded, not fatal."""
    headers = {"Authorization": f"Bearer {key}"}
    timeout = aiohttp.ClientTimeout(total=60)
    while time.monotonic() < deadline:
        # httpx (the SDK's client) drops a connection idle for 5 s, as
        # httpd's KeepAliveTimeout does; aiohttp would keep it 15 s
        connector = aiohttp.TCPConnector(keepalive_timeout=4)
        async with aiohttp.ClientSession(headers=headers, timeout=timeout,
                                         connector=connector) as s:
            try:
                await client_rounds(idx, base, s, deadline, stats)
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                op = "transport:" + stats.current.get(id(s), "?")
                stats.by_op[(op, type(e).__name__)] += 1
                print(f"client {idx}: {op}: {type(e).__name__}: {e}", file=sys.stderr)
                stats.unexpected.append((op, type(e).__name__))


def upload_form(cfg, content, name):
    """The form exactly as the official SDK builds it."""
    form = aiohttp.FormData(quote_fields=True)
    for k, v in cfg["fields"].items():
        form.add_field(k, v)
    form.add_field("file", content, filename=name, content_type="text/plain")
    return form


async def client_rounds(idx, base, s, deadline, stats):
    ws = f"{base}/api/v1/workspaces/load{idx % 8}"
    n = 0
    while time.monotonic() < deadline:
        n += 1
        st, body = await call(stats, s, "create", "POST", f"{ws}/upload_sessions", {201},
                              json={"write_mode": "KEEP"})
        if st != 201:
            continue
        created = json.loads(body)
        sid = created["session_id"]
        cfg = created["aws_prefixed_request_config"]
        for i in range(3):
            content = f"client {idx} round {n} file {i}\n".encode() * 20
            await call(stats, s, "upload", "POST", cfg["url"], {204}, allow_redirects=False,
                       make_data=lambda c=content, i=i: upload_form(cfg, c, f"f{i}.txt"))
        await call(stats, s, "status", "GET", f"{ws}/upload_sessions/{sid}", {200})
        await call(stats, s, "list", "GET", f"{ws}/upload_sessions?limit=10", {200})
        await call(stats, s, "session_files", "GET", f"{ws}/upload_sessions/{sid}/files", {200})
        await call(stats, s, "close", "PUT", f"{ws}/upload_sessions/{sid}", {204}, json={})
        await call(stats, s, "files", "GET", f"{ws}/files?limit=10", {200})


# ---- hostile clients (--hostile) ------------------------------------------------

def multipart(parts, boundary="hostileboundary7MA4YWxkTrZu0gW"):
    """Raw multipart/form-data body of (name, value[, filename]) parts."""
    out = []
    for part in parts:
        name, value = part[0], part[1]
        disp = f'form-data; name="{name}"'
        if len(part) > 2:
            disp += f'; filename="{part[2]}"'
        out.append(f"--{boundary}\r\nContent-Disposition: {disp}\r\n\r\n".encode()
                   + value + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


async def hostile_many_parts(s, base, stats):
    """No credentials, a valid-looking session id, 2,000 parts named with
    200 characters each (about 0.5 MB)."""
    body, ctype = multipart([(f"{'n' * 190}{i:010d}", b"v") for i in range(2000)])
    url = f"{base}/api/v1/upload_target/{uuid.uuid4()}"
    return await hostile_post(s, url, body, ctype, stats, "h:many_parts", None)


async def hostile_meta_parts(s, key, stats, ws):
    """POST /files with eight `meta` parts of 1 MB each, then a small file."""
    meta = b'{"k":"' + b"m" * (1 << 20) + b'"}'
    body, ctype = multipart([("meta", meta)] * 8 + [("file", b"x\n", "h.txt")])
    return await hostile_post(s, f"{ws}/files", body, ctype, stats, "h:meta_parts", key)


async def hostile_filename_key(s, key, ws, stats):
    """A real session; the key keeps the signed prefix and then repeats
    ${filename} 300 times, for a file named with 10,000 bytes."""
    async with s.post(f"{ws}/upload_sessions", json={},
                      headers={"Authorization": f"Bearer {key}"}) as r:
        cfg = json.loads(await r.read())["aws_prefixed_request_config"] if r.status == 201 else None
    if cfg is None:
        stats.by_op[("h:filename_key", "no session")] += 1
        return
    fields = dict(cfg["fields"])
    fields["key"] = fields["key"].replace("${filename}", "") + "${filename}" * 300
    body, ctype = multipart([(k, v.encode()) for k, v in fields.items()]
                            + [("file", b"x\n", "f" * 10000)])
    await hostile_post(s, cfg["url"], body, ctype, stats, "h:filename_key", None)


async def hostile_post(s, url, body, ctype, stats, op, key):
    headers = {"Content-Type": ctype}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    async with s.post(url, data=body, headers=headers, allow_redirects=False) as r:
        await r.read()
        stats.by_op[(op, r.status)] += 1


async def hostile_trickle(host, port, stats):
    """An upload-target POST whose form field arrives 4 bytes every 20 ms
    (2,000 bytes over about 10 s) on a raw connection."""
    value = b"t" * 2000
    body, ctype = multipart([("key", value), ("file", b"x\n", "t.txt")])
    head = (f"POST /api/v1/upload_target/{uuid.uuid4()} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head)
        for i in range(0, len(body), 4):
            writer.write(body[i:i + 4])
            await writer.drain()
            await asyncio.sleep(0.02)
        line = await asyncio.wait_for(reader.readline(), 30)
        parts = line.split()
        stats.by_op[("h:trickle", int(parts[1]) if len(parts) > 1 else "no answer")] += 1
    except (OSError, asyncio.TimeoutError) as e:
        stats.by_op[("h:trickle", type(e).__name__)] += 1
    finally:
        writer.close()


async def hostile(idx, base, port, key, deadline, stats, pause):
    """One hostile client: the four shapes in turn, `pause` seconds apart.
    Its answers (and the server closing on it) are counted, never fatal."""
    ws = f"{base}/api/v1/workspaces/hostile{idx}"
    timeout = aiohttp.ClientTimeout(total=60)
    n = 0
    while time.monotonic() < deadline:
        async with aiohttp.ClientSession(timeout=timeout) as s:
            while time.monotonic() < deadline:
                shape = (idx + n) % 4
                n += 1
                try:
                    if shape == 0:
                        await hostile_many_parts(s, base, stats)
                    elif shape == 1:
                        await hostile_trickle("127.0.0.1", port, stats)
                    elif shape == 2:
                        await hostile_meta_parts(s, key, stats, ws)
                    else:
                        await hostile_filename_key(s, key, ws, stats)
                except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                    stats.by_op[(f"h:{shape}", type(e).__name__)] += 1
                    break
                await asyncio.sleep(pause)


async def run(args, server):
    stats = Stats()
    hstats = Stats()
    base = f"http://127.0.0.1:{server.port}"
    deadline = time.monotonic() + args.seconds
    samples = []

    async def sampler():
        start = time.monotonic()
        while time.monotonic() < deadline:
            samples.append((time.monotonic() - start, sum(children_rss(server.pid).values()) // 1024))
            await asyncio.sleep(2)

    tasks = [asyncio.create_task(client(i, base, server.key_all, deadline, stats))
             for i in range(args.clients)]
    if args.hostile:
        tasks += [asyncio.create_task(hostile(i, base, server.port, server.key_all2, deadline,
                                              hstats, args.hostile_pause))
                  for i in range(args.hostile)]
    tasks.append(asyncio.create_task(sampler()))
    await asyncio.gather(*tasks)
    return stats, hstats, samples


def report_ops(by_op, latency):
    for (op, status), n in sorted(by_op.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        lat = sorted(latency.get(op, ())) if isinstance(status, int) else []
        p50 = lat[len(lat) // 2] * 1000 if lat else 0
        p99 = lat[int(len(lat) * 0.99)] * 1000 if lat else 0
        print(f"  {op:14s} {status!s:>3}: {n:7d}   p50 {p50:6.1f} ms  p99 {p99:6.1f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=20, help="seconds before RSS must stay flat")
    ap.add_argument("--rss-growth-kib", type=int, default=16 * 1024)
    ap.add_argument("--hostile", type=int, nargs="?", const=4, default=0, metavar="N",
                    help="also run N hostile clients (default 4)")
    ap.add_argument("--hostile-pause", type=float, default=1.0,
                    help="seconds each hostile client waits between requests")
    args = ap.parse_args()

    # Enough threads per child for every client: the event MPM closes
    # keep-alive connections - including one whose next request has just
    # arrived - whenever a child has no idle worker, and it lets a child
    # hold more connections than threads, so 64 clients spread unevenly over
    # 3 x 32 threads met closed connections mid-request. A fixed set of
    # children too: retiring idle ones (MaxSpareThreads) closes theirs.
    server = UploadServer(max_open=100000, log_level="warn",
                          extra=["UploadSessionIngestThreads 2",
                                 "StartServers 3", "ServerLimit 3",
                                 "ThreadsPerChild 64", "MaxRequestWorkers 192",
                                 "MinSpareThreads 1", "MaxSpareThreads 192",
                                 "MaxConnectionsPerChild 0"])
    try:
        server.start()
        stats, hstats, samples = asyncio.run(run(args, server))
        errors = server.unexpected_errors()
        log = server.log_text()
    finally:
        server.stop(check=False)
        server.cleanup()

    total = sum(n for (op, st), n in stats.by_op.items() if isinstance(st, int))
    print(f"requests: {total} in {args.seconds} s = {total / args.seconds:.0f}/s, "
          f"{args.clients} clients")
    report_ops(stats.by_op, stats.latency)
    if args.hostile:
        print(f"hostile ({args.hostile} clients, answers not judged):")
        report_ops(hstats.by_op, {})
    after = [kib for t, kib in samples if t >= args.warmup]
    lo, hi = (min(after), max(after)) if after else (0, 0)
    growth = hi - lo
    rss = (f"children RSS after {args.warmup} s: {lo / 1024:.1f} -> {hi / 1024:.1f} MiB, "
           f"spread {growth / 1024:.1f} MiB (bound {args.rss_growth_kib / 1024:.1f})")
    print(rss)
    transport = sum(n for (op, st), n in stats.by_op.items() if not isinstance(st, int))
    print(f"transport errors: {transport}")
    fails = []
    if not after:
        fails.append("no RSS sample after warm-up (run longer than --warmup)")
    if stats.unexpected:
        fails.append(f"{len(stats.unexpected)} unexpected statuses or transport errors, "
                     f"e.g. {stats.unexpected[:5]}")
    if any(isinstance(status, int) and status >= 500 for (_, status) in stats.by_op):
        fails.append("5xx answers to the normal clients")
    if growth > args.rss_growth_kib:
        fails.append(f"resident memory grew by {growth / 1024:.1f} MiB after warm-up")
    if errors:
        fails.append("error-log lines:\n" + "\n".join(errors[:10]))
    notable = [ln for ln in log.splitlines() if "AH00052" in ln or "upload_session:warn" in ln]
    if notable:
        print("log notes:\n" + "\n".join(notable[:10]))
    for f in fails:
        print("FAIL: " + f)
    print(("load: PASS - " if not fails else "load: FAIL - ") + rss)
    return 0 if not fails else 1


if __name__ == "__main__":
    sys.exit(main())
