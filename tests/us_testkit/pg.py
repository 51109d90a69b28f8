"""A private PostgreSQL cluster for the tests (scripts/pg-test-cluster.sh:
initdb in a temporary directory, a free loopback port, never the system
service), started on first use and stopped when the process exits. Each
server gets a database of its own on it.

  US_IT_STORE=pgsql      run every UploadServer on PostgreSQL instead of SQLite
  US_PG_CONNINFO=...     use this cluster (a superuser's libpq conninfo)
                         instead of starting one
"""

import atexit
import glob
import os
import re
import subprocess
import threading
import uuid

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HELPER = os.environ.get("US_PG_CLUSTER", os.path.join(REPO_ROOT, "scripts", "pg-test-cluster.sh"))


def store_driver():
    """The store the test servers use: "sqlite3" (default) or "pgsql"."""
    return os.environ.get("US_IT_STORE", "sqlite3")


class PgCluster:
    def __init__(self, conninfo=None):
        self.dir = None
        if conninfo:
            self.conninfo = conninfo
            return
        out = subprocess.run([HELPER, "start"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"cannot start a private PostgreSQL: {out.stderr.strip()}")
        self.dir, self.conninfo = out.stdout.splitlines()[:2]

    def psql(self, sql, dbname="postgres"):
        """Runs sql (one statement); its rows as text, one per line."""
        out = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                              f"{self.conninfo} dbname={dbname}", "-c", sql],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {out.stderr.strip()}")
        return out.stdout.strip()

    def create_database(self, prefix="us_it_"):
        """A new empty database; returns (name, conninfo)."""
        name = prefix + uuid.uuid4().hex[:16]
        self.psql(f"CREATE DATABASE {name}")
        return name, f"{self.conninfo} dbname={name}"

    def drop_database(self, name):
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def restart(self):
        """pg_ctl restart -m fast: every connection is dropped, the server is
        away for a moment. Only for a cluster this process started."""
        assert self.dir, "not a cluster of this process"
        subprocess.run([HELPER, "restart", self.dir], check=True, timeout=120)

    def _pg_ctl(self, *args):
        bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        owner = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        subprocess.run([*owner, f"{bindir}/pg_ctl", "-D", f"{self.dir}/data", *args],
                       check=True, stdout=subprocess.DEVNULL, timeout=120)

    def pause(self):
        """pg_ctl stop -m fast, keeping the cluster (an outage): resume()
        starts it again with its options. Only for a cluster this process
        started."""
        assert self.dir, "not a cluster of this process"
        with open(os.path.join(self.dir, "data", "postmaster.opts")) as f:
            opts = f.read().split(None, 1)[1]
        self._opts = re.sub(r'"-D" "[^"]*"', "", opts).replace('"', "")
        self._pg_ctl("-m", "fast", "-w", "stop")

    def resume(self):
        self._pg_ctl("-l", f"{self.dir}/server.log", "-w", "start", "-o", self._opts)

    def stop(self):
        if self.dir:
            subprocess.run([HELPER, "stop", self.dir], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=120)
            self.dir = None


_cluster = None
_lock = threading.Lock()


def cluster():
    """The process's cluster, started on first use."""
    global _cluster
    with _lock:
        if _cluster is None:
            _cluster = PgCluster(os.environ.get("US_PG_CONNINFO") or None)
            atexit.register(_cluster.stop)
        return _cluster


def sqlite_only(reason):
    """A pytest mark for a test of an SQLite property (its files, its WAL):
    skipped when the servers run on another store."""
    import pytest
    return pytest.mark.skipif(store_driver() != "sqlite3", reason=f"SQLite only: {reason}")
