"""``agcluster up`` run as a user runs it: the real command, its own state dir, free ports.

Tests drive it only through what a user has: its exit status and output, ``<state>/up.json``
(which process runs where), the HTTP API, and signals to the pids the status file names.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from tests.support.stack import remove_containers
from workers.storage import WorkspaceStorage

REPO = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("AGC_AGENT_IMAGE", "agcluster-agent:latest")


def wait_until(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``cond`` until it returns something truthy (HTTP/OS errors count as not yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = cond()
        except (httpx.HTTPError, OSError, ValueError, KeyError):
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without AGC_/ANTHROPIC_ settings a developer may have exported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGC_", "ANTHROPIC_"))}
    env.update(extra)
    return env


@dataclass
class Up:
    """One ``agcluster up`` process; ``start()`` returns once ``/health`` is 200 (or as asked)."""

    state: Path
    env: dict[str, str]
    args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    out_path: Path | None = None
    _out: IO[bytes] | None = None

    @classmethod
    def make(cls, tmp: Path, *args: str, model_url: str = "", **env: str) -> Up:
        state = tmp / f"up-{uuid.uuid4().hex[:6]}"
        base = clean_env(
            AGC_STATE_DIR=str(state),
            AGC_PORT="0",
            AGC_NATS_PORT="0",
            AGC_NATS_CLUSTER_PORT="0",
            AGC_REDIS_PORT="0",
            AGC_AGENT_IMAGE=IMAGE,
            # Stacks share the Docker engine: each only ever touches its own containers.
            AGC_CLUSTER=f"test-up-{uuid.uuid4().hex[:8]}",
            AGC_HEARTBEAT_INTERVAL="0.5",
            AGC_HEARTBEAT_TTL="3",
            AGC_SHUTDOWN_TIMEOUT="20",
            # No warm pool unless a test asks (the default's slot is one more container).
            AGC_POOL_CONFIGS="",
        )
        if model_url:
            base["ANTHROPIC_BASE_URL"] = model_url
        base.update(env)
        return cls(state=state, env=base, args=list(args))

    def start(self, *, healthy: bool = True, timeout: float = 60.0) -> Up:
        self.state.mkdir(parents=True, exist_ok=True)
        self.out_path = self.state.parent / f"{self.state.name}.out"
        self._out = self.out_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agcluster.cli", "up", *self.args],
            cwd=REPO,
            env=self.env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            # Its own process group, as in a terminal: ctrl_c() signals the whole group.
            start_new_session=True,
        )
        wait_until(lambda: self.status()["phase"] == "running" or self._exited(), timeout, "up")
        if healthy:
            wait_until(lambda: self.health() == 200, timeout, f"/health 200\n{self.logs()}")
        return self

    def _exited(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"agcluster up exited {self.proc.returncode}:\n{self.output()}")
        return False

    # -- what a user can see ---------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.state / "up.json").read_text())
        return data

    def process(self, name: str) -> dict[str, Any]:
        return next(p for p in self.status()["processes"] if p["name"] == name)

    @property
    def base_url(self) -> str:
        return str(self.status()["api_url"])

    def health(self) -> int:
        return httpx.get(f"{self.base_url}/health", timeout=2.0).status_code

    def metric(self, name: str, process: str) -> float | None:
        text = httpx.get(f"{self.base_url}/metrics", timeout=5.0).text
        prefix = f'{name}{{process="{process}"}} '
        for line in text.splitlines():
            if line.startswith(prefix):
                return float(line[len(prefix) :])
        return None

    def output(self) -> str:
        return self.out_path.read_text(errors="replace") if self.out_path else ""

    def logs(self) -> str:
        parts = [f"--- up\n{self.output()[-4000:]}"]
        for p in sorted((self.state / "logs").glob("*.log")):
            parts.append(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def client(self, api_key: str | None = None, timeout: float = 120.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    # -- what a user (or a fault) does -----------------------------------------------------
    def kill(self, name: str) -> int:
        """SIGKILL process ``name``; return its pid."""
        pid = int(self.process(name)["pid"])
        os.kill(pid, signal.SIGKILL)
        return pid

    def restarted(self, name: str, old_pid: int) -> bool:
        p = self.process(name)
        return bool(p["state"] == "running" and p["pid"] and p["pid"] != old_pid)

    def ctrl_c(self) -> None:
        """What a terminal does on Ctrl-C: SIGINT to every process of the foreground group."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGINT)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 90.0) -> int:
        """Signal ``up`` and wait for it to exit; return its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self._out is not None:
                self._out.close()

    def close(self) -> None:
        """Stop (SIGKILL as a last resort) and remove this stack's containers and volumes."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.stop(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._out is not None:
            self._out.close()
        remove_containers(f"agc.cluster={self.env['AGC_CLUSTER']}")
        # The workspaces its workers loop-mounted (workers/storage.py): a mount left behind
        # would keep the test's tmp dir from ever being removed.
        WorkspaceStorage(self.state / "storage").remove_all()
