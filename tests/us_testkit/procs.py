"""Processes, ports and waiting: what the integration tests, the load test
and the benchmarks all need around an httpd they started. Standard library
only.

The one reader of the children's memory is here: children_rss (VmRSS, what
is resident now) and children_peak_rss (VmHWM, the peak so far), in bytes.
"""

import os
import shutil
import signal
import socket
import subprocess
import time


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_open(port, timeout=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid):
    """True while the process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            # state is the field after the parenthesised command name
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def children_of(ppid):
    """Sorted pids of the processes whose parent is ppid (zombies included)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                for line in f:
                    if line.startswith("PPid:"):
                        if int(line.split()[1]) == ppid:
                            out.append(int(d))
                        break
        except (OSError, ValueError):
            pass
    return sorted(out)


def process_age(pid):
    """Seconds since pid started, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, IndexError, ValueError):
        return None
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def children_settled(ppid, min_age=1.1):
    """True when no child of ppid is younger than min_age seconds.

    httpd's MPM ends a child that a stop finds in its first moments with
    exit() from a signal handler: interrupted inside malloc (the child is
    still single-threaded, so malloc takes no lock), the exit handlers'
    frees (those of libcurl's TLS library) find the heap mid-update and
    abort it ("corrupted double-linked list", "exit signal Abort (6)").
    httpd's race, not the module's. After a graceful restart the MPM forks
    the new generation one child per second (its idle-server maintenance);
    a tick that forked nothing means it has the children it wants, so a
    stop then finds none being born."""
    for c in children_of(ppid):
        age = process_age(c)
        if age is not None and age < min_age:
            return False
    return True


def sigkill_daemon(pid):
    """SIGKILL of a daemon (httpd: it leads its own process group) and of
    its children: first the whole group at once, so a child it forks after
    any listing dies too instead of living on with the listening socket;
    then each child listed, for one that left the group. Returns the pids
    listed, the daemon first."""
    pids = [pid] + children_of(pid)
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def stuck_report(pid):
    """What a process that does not exit is doing: its state, blocked and
    caught signals and kernel wait channel, each thread's kernel stack when
    readable, and every thread's backtrace when gdb is installed. For the
    failure message of a stop that had to wait."""
    lines = [f"--- pid {pid} ---"]
    fields = _status_fields(pid) or {}
    for k in ("Name", "State", "Threads", "SigPnd", "ShdPnd", "SigBlk", "SigCgt"):
        lines.append(f"{k}: {fields.get(k, '?')}")
    for path in (f"/proc/{pid}/wchan", f"/proc/{pid}/stack"):
        try:
            with open(path) as f:
                lines.append(f"{os.path.basename(path)}: {f.read().strip()}")
        except OSError:
            pass
    gdb = shutil.which("gdb")
    if gdb:
        try:
            out = subprocess.run([gdb, "-p", str(pid), "-batch", "-nx",
                                  "-ex", "thread apply all bt"],
                                 capture_output=True, text=True, timeout=30).stdout
            lines += [l for l in out.splitlines() if l.startswith(("#", "Thread"))]
        except (OSError, subprocess.SubprocessError) as e:
            lines.append(f"gdb: {e}")
    return "\n".join(lines)


def files_open(pid, under):
    """Paths of process pid's open descriptors that lie under directory
    `under` (a descriptor closed while they are read is left out)."""
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(under):
            out.append(target)
    return out


def wait_for(predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _status_fields(pid):
    """/proc/<pid>/status as {field: value text}, None when it is gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        return None
    return out


def _children_memory(parent_pid, field):
    """{pid: <field> in bytes} of the live (not zombie) processes whose
    parent is parent_pid."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _status_fields(int(name))
        if not st or st.get("PPid") != str(parent_pid) or field not in st:
            continue
        if st.get("State", "").startswith(("Z", "X")):
            continue
        out[int(name)] = int(st[field].split()[0]) * 1024
    return out


def children_rss(parent_pid):
    """{pid: VmRSS in bytes} of the live processes whose parent is parent_pid."""
    return _children_memory(parent_pid, "VmRSS")


def children_peak_rss(parent_pid):
    """{pid: VmHWM (the peak resident size so far) in bytes} of the live
    processes whose parent is parent_pid."""
    return _children_memory(parent_pid, "VmHWM")
