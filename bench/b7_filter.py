"""GET /files with an OData filter over a large workspace (issue #14's
benchmark): N files (default 100,000; 10 % matching) seeded straight into
the store's us_files rows (the list reads no bytes; N HTTP uploads would
only measure the upload path; the store's triggers fill its key table as
for any insert), then, in the same run and ABAB order, blocks of

    A: GET /files?filter=category eq 'x' and year ge 2020&limit=10
    B: GET /files?limit=10

Prints each block's median latency, the A/B ratio of every pair, and their
median with min..max spread; target <= 3x. The answers are checked: A's
total is exactly the matching count, every item matches.

    python3 bench/b7_filter.py [N] [pairs] [requests per block]
"""
import json
import os
import sqlite3
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from us_testkit import pg  # noqa: E402
from us_testkit.server import UploadServer  # noqa: E402

FILTER = "category eq 'x' and year ge 2020"


def meta_of(i):
    """10 % match (category x, year >= 2020); 10 % are category x of an
    earlier year, so both halves of the `and` decide."""
    if i % 10 == 0:
        return {"category": "x", "year": 2020 + i % 5}
    if i % 10 == 5:
        return {"category": "x", "year": 2000 + i % 19}
    return {"category": "abcdefghij"[i % 7], "year": 2000 + i % 25, "n": i}


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# meta_of in SQL, for PostgreSQL
PG_SEED = """INSERT INTO us_files (file_id, workspace, name, size, meta, created_at, session_id)
SELECT gen_random_uuid()::text, '{ws}', 'file-' || lpad(i::text, 6, '0') || '.txt', 100,
  (CASE WHEN i % 10 = 0 THEN jsonb_build_object('category', 'x', 'year', 2020 + i % 5)
        WHEN i % 10 = 5 THEN jsonb_build_object('category', 'x', 'year', 2000 + i % 19)
        ELSE jsonb_build_object('category', substr('abcdefghij', i % 7 + 1, 1),
                                'year', 2000 + i % 25, 'n', i) END)::text,
  {t0} + i * 1000, NULL
FROM generate_series({first}, {last}) AS i"""


def seed_pg(s, ws, n, t0):
    for lo in range(0, n, 10_000):  # in pieces: the testkit's psql gives a statement 60 s
        pg.cluster().psql(PG_SEED.format(ws=ws, t0=t0, first=lo, last=min(n, lo + 10_000) - 1),
                          dbname=s.pg_db)
    # what autovacuum does to a table after a bulk insert (statistics, the
    # visibility map that index-only scans need), done now for both sides
    pg.cluster().psql("VACUUM ANALYZE us_files", dbname=s.pg_db)
    pg.cluster().psql("VACUUM ANALYZE us_file_keys", dbname=s.pg_db)


def seed(db_path, ws, n, t0):
    con = sqlite3.connect(db_path, timeout=60)
    con.execute("PRAGMA busy_timeout=60000")
    rows = ((str(uuid.uuid4()), ws, f"file-{i:06d}.txt", 100, json.dumps(meta_of(i)),
             t0 + i * 1000, None) for i in range(n))
    with con:
        con.executemany("INSERT INTO us_files (file_id, workspace, name, size, meta, created_at,"
                        " session_id) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    con.close()


def block(c, path, params, k):
    times = []
    last = None
    for _ in range(k):
        t = time.perf_counter()
        r = c.get(path, params=params)
        times.append(time.perf_counter() - t)
        assert r.status_code == 200, r.text
        last = r.json()
    return statistics.median(times), last


def run(store, n, pairs, k):
    s = UploadServer(max_open=1000, store=store)
    s.start()
    try:
        ws = "bench-filter"
        c = s.client(s.user_all, timeout=120)
        r = c.post(f"{ws}/files", files={"file": ("first.txt", b"x")})  # the schema is there
        assert r.status_code == 201, r.text
        t0 = time.monotonic()
        start = int(time.time() * 1e6) - n * 1000
        if store == "pgsql":
            seed_pg(s, ws, n, start)
        else:
            seed(os.path.join(s.dir, "state", "store.db"), ws, n, start)
        print(f"[{store}] seeded {n} rows in {time.monotonic() - t0:.1f} s", flush=True)
        path = f"{ws}/files"
        a, b = {"filter": FILTER, "limit": 10}, {"limit": 10}
        want = sum(1 for i in range(n) if i % 10 == 0)
        block(c, path, a, 3)  # warm both
        block(c, path, b, 3)
        ratios = []
        for p in range(pairs):
            ta, ans = block(c, path, a, k)
            tb, bns = block(c, path, b, k)
            assert ans["total"] == want and len(ans["data"]) == 10, ans
            assert all(i["meta"]["category"] == "x" and i["meta"]["year"] >= 2020
                       for i in ans["data"]), ans
            assert bns["total"] == n + 1, bns
            ratios.append(ta / tb)
            print(f"[{store}] pair {p + 1}: filter {ta * 1000:.2f} ms, no filter {tb * 1000:.2f} ms, "
                  f"ratio {ta / tb:.2f}; load {load()}", flush=True)
        print(f"[{store}] GET /files filter vs none over {n} files ({want} matching), {pairs} ABAB "
              f"pairs of {k} requests: ratio median {statistics.median(ratios):.2f} "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f}); target <= 3; load {load()}",
              flush=True)
        return statistics.median(ratios)
    finally:
        s.stop()
        s.cleanup()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    pairs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    which = sys.argv[4] if len(sys.argv) > 4 else "both"
    stores = ["sqlite3", "pgsql"] if which == "both" else [which]
    medians = {st: run(st, n, pairs, k) for st in stores}
    print("medians: " + ", ".join(f"{st} {m:.2f}" for st, m in medians.items()))


if __name__ == "__main__":
    main()
