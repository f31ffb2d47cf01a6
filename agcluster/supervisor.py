"""Keep the local stack's processes up: restart what exits, with backoff, until it loops.

A process that exits while the stack is not stopping is restarted at once the first time, then
after ``restart_backoff`` seconds, doubling up to ``restart_backoff_max``. When one process exits
``crash_loop_exits`` times within ``crash_loop_window`` seconds it is left stopped and reported
(with the end of its log); every other process keeps running. Stopping goes tier by tier, highest
first (workers, then the API, then Redis, then NATS), each tier's processes in parallel.

Single-threaded on purpose: ``tick`` is called from the ``up`` loop, and starting a server
(which waits until it serves) briefly holds that loop.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from agcluster.procs import Service, ServiceError

log = structlog.get_logger("agc.up")


@dataclass(frozen=True, slots=True)
class Policy:
    backoff: float = 0.2
    backoff_max: float = 10.0
    loop_exits: int = 5
    loop_window: float = 60.0
    stop_timeout: float = 25.0

    def delay(self, recent_exits: int) -> float:
        """Seconds to wait before restarting after the ``recent_exits``-th exit in the window."""
        if recent_exits <= 1:
            return 0.0
        return float(min(self.backoff_max, self.backoff * 2 ** (recent_exits - 2)))


@dataclass
class Child:
    """One supervised process: how to start it and what has happened to it."""

    name: str
    start: Callable[[], Service]
    # Stop order: higher tiers stop first (workers 3, API 2, Redis 1, NATS 0).
    tier: int
    address: str = ""
    svc: Service | None = None
    # running | backoff (waiting to restart) | crash-loop (given up) | stopping | stopped
    state: str = "stopped"
    restarts: int = 0
    exits: int = 0
    recent: deque[float] = field(default_factory=deque)
    restart_at: float = 0.0
    last_exit: str = ""

    def row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.svc.proc.pid if self.svc and self.svc.alive() else None,
            "state": self.state,
            "address": self.address,
            "restarts": self.restarts,
            "exits": self.exits,
            "last_exit": self.last_exit,
        }


class Supervisor:
    """Start, watch, restart and stop the children of ``agcluster up``."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.children: list[Child] = []
        # Called after every change of a child's state (``up`` rewrites its status file).
        self.on_change: Callable[[], None] = lambda: None

    def add(self, child: Child) -> Child:
        """Start ``child`` now (a failure to start raises: the stack is not up yet)."""
        self.children.append(child)
        child.svc = child.start()
        child.state = "running"
        self.on_change()
        return child

    def tick(self, now: float | None = None) -> None:
        """Notice exits and perform the restarts that are due."""
        now = time.monotonic() if now is None else now
        for child in self.children:
            if child.state == "running" and child.svc is not None and not child.svc.alive():
                code = child.svc.proc.returncode
                self._exited(child, _describe_exit(code), now, child.svc.log_tail())
            elif child.state == "backoff" and now >= child.restart_at:
                self._restart(child, now)

    def _exited(self, child: Child, why: str, now: float, tail: str) -> None:
        child.exits += 1
        child.last_exit = why
        child.recent.append(now)
        while child.recent and now - child.recent[0] > self.policy.loop_window:
            child.recent.popleft()
        n = len(child.recent)
        if n >= self.policy.loop_exits:
            child.state = "crash-loop"
            log.error(
                f"{child.name} is crash-looping ({why}): it exited {n} times within "
                f"{self.policy.loop_window:.0f} s, so it stays stopped; the rest of the stack "
                f"keeps running. Fix it, then `kill -HUP {os.getpid()}` retries it. "
                f"The end of its log:\n{tail}"
            )
        else:
            delay = self.policy.delay(n)
            child.state = "backoff"
            child.restart_at = now + delay
            log.warning(
                f"{child.name} exited unexpectedly ({why}, {n} exit(s) in the last "
                f"{self.policy.loop_window:.0f} s); restarting in {delay:.1f} s. "
                f"The end of its log:\n{tail}"
            )
        self.on_change()

    def _restart(self, child: Child, now: float) -> None:
        try:
            child.svc = child.start()
        except ServiceError as exc:
            # Counts as one more exit: a server that cannot come back loops like one that dies.
            self._exited(child, "failed to start", time.monotonic(), str(exc))
            return
        child.restarts += 1
        child.state = "running"
        log.info(f"{child.name} restarted", process=child.name, restarts=child.restarts)
        self.on_change()

    def retry_given_up(self) -> list[str]:
        """Give every crash-looping child a fresh start (``kill -HUP`` of ``up``, after a fix)."""
        names = []
        for child in self.children:
            if child.state == "crash-loop":
                child.recent.clear()
                child.state = "backoff"
                child.restart_at = 0.0
                names.append(child.name)
        if names:
            log.info(f"retrying {', '.join(names)} (SIGHUP)")
            self.on_change()
        return names

    def stop_all(self) -> None:
        """SIGTERM each tier, highest first, and wait for it (SIGKILL after the timeout)."""
        for tier in sorted({c.tier for c in self.children}, reverse=True):
            group = [c for c in self.children if c.tier == tier]
            live = [c for c in group if c.svc is not None and c.svc.alive()]
            for c in group:
                c.state = "stopping" if c in live else "stopped"
            self.on_change()
            for c in live:
                assert c.svc is not None
                c.svc.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + self.policy.stop_timeout
            for c in live:
                assert c.svc is not None
                try:
                    c.svc.proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning(f"{c.name} did not stop in time: killed", process=c.name)
                    c.svc.kill()
                c.state = "stopped"
                log.info(f"{c.name} stopped", process=c.name)
            self.on_change()

    def rows(self) -> list[dict[str, Any]]:
        return [c.row() for c in self.children]


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
