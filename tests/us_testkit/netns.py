"""A network link that can be partitioned (NetLink): a network namespace
of its own reached over a veth pair, for a test that needs packets dropped
without an answer (a database host that died, a network partition). A
relay on loopback cannot show that: its kernel keeps acknowledging what is
sent. Nothing machine-wide is touched: the namespace and the pair are the
link's own, never lo; close() removes both (also after a failure).

    with NetLink() as net:
        sock = net.listener()            # listening at net.addr, in the namespace
        relay = SlowLink(target, 0, b"...", listener=sock)
        net.partition()                  # every packet either way dropped
        net.heal()

Needs root (CAP_NET_ADMIN) and ip (iproute2): NetLink.unavailable()
says why not, for a skip. Uses only the standard library.
"""

import ctypes
import os
import random
import shutil
import socket
import subprocess
import threading
import uuid

from us_testkit.slowlink import Closing

IP = shutil.which("ip") or "/usr/sbin/ip"
CLONE_NEWNET = 0x40000000


def _run(*args, check=True):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=30, check=check)


class NetLink(Closing):
    """This network namespace <-> a new one, over a veth pair on a /30 of
    10.0.0.0/8 chosen at random: addr is the far end's address."""

    def __init__(self):
        tag = uuid.uuid4().hex[:8]
        self.ns = f"us-it-{tag}"
        self.near, self.far = f"usv{tag}a", f"usv{tag}b"  # at most 15 characters
        base = random.randrange(200, 250) << 16 | random.randrange(0, 1 << 16) & ~3
        self.near_addr = socket.inet_ntoa((10 << 24 | base | 1).to_bytes(4, "big"))
        self.addr = socket.inet_ntoa((10 << 24 | base | 2).to_bytes(4, "big"))
        try:
            _run(IP, "netns", "add", self.ns)
            _run(IP, "link", "add", self.near, "type", "veth", "peer", "name", self.far,
                 "netns", self.ns)
            _run(IP, "addr", "add", f"{self.near_addr}/30", "dev", self.near)
            _run(IP, "link", "set", self.near, "up")
            _run(IP, "-n", self.ns, "addr", "add", f"{self.addr}/30", "dev", self.far)
            _run(IP, "-n", self.ns, "link", "set", self.far, "up")
            _run(IP, "-n", self.ns, "link", "set", "lo", "up")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def unavailable():
        """Why a NetLink cannot be made here (a skip's reason), or None."""
        if os.geteuid() != 0:
            return "network namespaces and veth pairs need root"
        if not os.access(IP, os.X_OK):
            return "ip (iproute2) is needed"
        try:
            NetLink().close()
        except (OSError, subprocess.SubprocessError) as e:
            return f"cannot make a network namespace with a veth pair: {e}"
        return None

    def listener(self):
        """A TCP socket listening at addr on a free port, inside the
        namespace (made by a thread that enters it: the namespace is a
        thread's, the socket keeps it; this thread's stays)."""
        out = {}

        def make():
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                with open(f"/run/netns/{self.ns}") as f:
                    if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns")
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((self.addr, 0))
                s.listen(256)
                out["sock"] = s
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                out["error"] = e

        t = threading.Thread(target=make)
        t.start()
        t.join()
        if "error" in out:
            raise out["error"]
        return out["sock"]

    def partition(self):
        """Every packet either way dropped from now on, without an answer or
        a reset: the far end is set down (ip link set ... down, in the
        namespace), so the near one has no carrier and its packets go
        nowhere; both keep their addresses and the near end's route (this
        kernel has no netem or tc classifiers to drop them otherwise)."""
        _run(IP, "-n", self.ns, "link", "set", self.far, "down")

    def heal(self):
        _run(IP, "-n", self.ns, "link", "set", self.far, "up")

    def close(self):
        # removing the namespace removes the far end, and with it the near one
        _run(IP, "netns", "del", self.ns, check=False)
        _run(IP, "link", "del", self.near, check=False)
