"""One ``agcluster up`` per state dir: its lock, its status file, and who holds a busy port.

The running supervisor holds an exclusive ``flock`` on ``<state>/up.lock`` from before it starts
anything until after the last child has stopped, and keeps ``<state>/up.json`` current (its pid,
``starting``/``running``/``stopping``, every process with its pid, address and restarts). A second
``up`` on the same state dir reads that file and says what is running instead of failing on a
bind error; one on another state dir finds the ports taken and names the process holding each.
The API exports the same file's counters at ``/metrics`` (``api/supervisor_metrics.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

LOCK_NAME = "up.lock"
STATUS_NAME = "up.json"


class InstanceError(RuntimeError):
    """Another stack is in the way; the message says which, where, and what to do."""


@dataclass
class Instance:
    """The lock of the running ``up``; released when the process ends, however it ends."""

    state: Path
    _lock: IO[str]

    @property
    def status_path(self) -> Path:
        return self.state / STATUS_NAME

    def write_status(self, status: dict[str, Any]) -> None:
        """Replace ``up.json`` atomically: readers never see half a file."""
        tmp = self.status_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(status, indent=1))
        tmp.replace(self.status_path)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.status_path.unlink()
        self._lock.close()


def acquire(state: Path) -> Instance:
    """Take ``state``'s lock, or raise :class:`InstanceError` describing the ``up`` holding it."""
    lock = (state / LOCK_NAME).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise InstanceError(describe_running(state)) from None
    return Instance(state, lock)


def read_status(state: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state / STATUS_NAME).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe_running(state: Path) -> str:
    status = read_status(state) or {}
    phase = status.get("phase", "starting")
    pid = status.get("pid", "?")
    since = status.get("phase_since")
    ago = f" for {time.time() - since:.0f} s" if isinstance(since, int | float) else ""
    verb = "is still stopping" if phase == "stopping" else f"is {phase}"
    lines = [f"another `agcluster up` (pid {pid}) {verb}{ago} with state dir {state}:"]
    for proc in status.get("processes", []):
        where = proc.get("address") or ""
        lines.append(
            f"  {proc.get('name', '?'):<14} pid {proc.get('pid') or '-':<8} "
            f"{proc.get('state', '?'):<10} {where}".rstrip()
        )
    if phase == "stopping":
        lines.append("wait for it to finish stopping, then run `agcluster up` again.")
    else:
        lines.append(
            f"stop it first (Ctrl-C in its terminal, or `kill {pid}`), or run a second stack "
            "with its own AGC_STATE_DIR and ports (AGC_PORT, AGC_NATS_PORT, AGC_REDIS_PORT)."
        )
    return "\n".join(lines)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something already listens on ``host:port`` (a bind would fail)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def check_ports(ports: dict[str, int], host: str = "127.0.0.1") -> None:
    """Raise :class:`InstanceError` naming who holds each of ``ports`` (label: port) in use."""
    busy = [(label, port) for label, port in ports.items() if port and port_in_use(port, host)]
    if not busy:
        return
    lines = ["cannot start: ports this stack needs are taken."]
    for label, port in busy:
        lines.append(f"  {host}:{port} ({label}): {describe_holder(port)}")
    lines.append(
        "if that is another `agcluster up` that is still stopping, wait for it; otherwise stop "
        "it or choose other ports (AGC_PORT, AGC_NATS_PORT, AGC_NATS_CLUSTER_PORT, "
        "AGC_REDIS_PORT; 0 picks free ones)."
    )
    raise InstanceError("\n".join(lines))


def describe_holder(port: int) -> str:
    """``pid N: command line (state dir …)`` of the process listening on ``port``, if visible."""
    pid = _listening_pid(port)
    if pid is None:
        return "held by a process this user cannot see"
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid {pid}"
    cmd = " ".join(a.decode(errors="replace") for a in argv if a)
    text = f"pid {pid}: {cmd[:200]}"
    if state := _state_dir_of(pid, argv):
        text += f"  (an agcluster process of state dir {state})"
    return text


def _state_dir_of(pid: int, argv: list[bytes]) -> str | None:
    """The state dir an agcluster child runs for: from its data-dir flag or its environment."""
    args = [a.decode(errors="replace") for a in argv]
    for flag in ("-sd", "--dir"):  # nats-server's store dir / redis-server's data dir
        if flag in args[:-1]:
            data = Path(args[args.index(flag) + 1])
            return str(data.parent)
    with contextlib.suppress(OSError):
        for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            if item.startswith(b"AGC_STATE_DIR="):
                return item.split(b"=", 1)[1].decode(errors="replace")
    return None


def _listening_pid(port: int) -> int | None:
    """Find the listening socket on ``port`` in /proc/net, then the process owning its inode."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                # local_address is ADDR:PORT in hex; state 0A is LISTEN.
                if len(cols) > 9 and cols[3] == "0A" and int(cols[1].split(":")[1], 16) == port:
                    inodes.add(cols[9])
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in targets:
                        return int(proc.name)
    return None
