"""DELETE /files of N names (issue #14's benchmark): N files posted with
POST /files into one workspace, then one DELETE /files {"names": [...]};
prints files/s of the delete (rows, trash and bytes) and checks that the
workspace is empty and the bytes gone.

    python3 bench/b5_delete_names.py [N]     (default 10000)
"""
import concurrent.futures as cf
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from us_testkit.server import UploadServer  # noqa: E402


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    s = UploadServer(max_open=1000)
    s.start()
    try:
        ws = "bench-delete"
        names = [f"file-{i:06d}.txt" for i in range(n)]

        def post(chunk):
            c = s.client(s.user_all)
            for name in chunk:
                r = c.post(f"{ws}/files", files={"file": (name, b"x" * 100)})
                assert r.status_code == 201, r.text
        t0 = time.monotonic()
        with cf.ThreadPoolExecutor(8) as ex:
            list(ex.map(post, [names[i::8] for i in range(8)]))
        t_post = time.monotonic() - t0
        c = s.client(s.user_all)
        t0 = time.monotonic()
        r = c.request("DELETE", f"{ws}/files", json={"names": names}, timeout=600)
        t_del = time.monotonic() - t0
        assert r.status_code == 200 and r.json() is None, r.text
        left = c.get(f"{ws}/files").json()["total"]
        blobs = os.listdir(os.path.join(s.dir, "state", "data", "files"))
        print(f"posted {n} files in {t_post:.1f} s; DELETE /files of {n} names: {t_del:.2f} s, "
              f"{n / t_del:.0f} files/s; left listed {left}, blobs left {len(blobs)}")
    finally:
        s.stop()


if __name__ == "__main__":
    main()
