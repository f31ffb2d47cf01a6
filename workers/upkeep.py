"""Heartbeat (this worker's liveness key) and the periodic sweep: reconcile, reap idle sessions."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable

import structlog

from broker.state import WorkerInfo
from workers.registry import Registry

log = structlog.get_logger("agc.worker")


class Upkeep:
    """The worker's periodic jobs."""

    def __init__(self, registry: Registry, reconcile: Callable[[], Awaitable[None]]) -> None:
        self.reg = registry
        self.settings = registry.settings
        self._reconcile = reconcile
        self.started_at = time.time()
        self.log = log.bind(worker_id=registry.worker_id)

    async def heartbeat_once(self) -> None:
        """Refresh the liveness key (with what the API shows about this worker)."""
        self.reg.metrics.sessions.set(len(self.reg.sessions))
        pool = self.reg.pool
        await self.reg.store.heartbeat(
            self.reg.worker_id,
            WorkerInfo(
                host=socket.gethostname(),
                pid=os.getpid(),
                sessions=len(self.reg.sessions),
                max_sessions=self.settings.max_sessions,
                started_at=self.started_at,
                load=self.reg.load,
                accepting=self.reg.running and self.reg.load < self.settings.max_sessions,
                pool_ready=pool.ready if pool else 0,
                pool_size=pool.size if pool else 0,
                pool_memory_bytes=pool.memory_bytes() if pool else 0,
            ),
            ttl=self.settings.heartbeat_ttl,
        )

    async def heartbeat_loop(self) -> None:
        """Refresh every ``heartbeat_interval``, and at once when this worker's load changes."""
        changed = self.reg.load_changed
        while self.reg.running:
            changed.clear()  # before the write: a change during it triggers another
            try:
                await self.heartbeat_once()
            except Exception as exc:  # Redis restarting: keep trying
                self.log.warning("heartbeat failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), self.settings.heartbeat_interval)

    async def reap_idle(self) -> None:
        """Stop sessions whose last real use is older than the idle timeout."""
        now = time.time()
        for sid, handle in list(self.reg.sessions.items()):
            rec = await self.reg.store.get(sid)
            if rec is None or handle.stopping or rec.status == "busy":
                continue
            if now - rec.last_active >= self.settings.session_idle_timeout:
                self.log.info("stopping idle session", session_id=sid)
                self.reg.spawn(self.reg.stop_session(handle, reason="idle_timeout"))

    async def maintenance_loop(self) -> None:
        last_reap = time.monotonic()
        while self.reg.running:
            # Often enough to adopt a dead worker's sessions soon after its liveness lapses.
            await asyncio.sleep(
                min(5.0, self.settings.heartbeat_ttl, self.settings.session_cleanup_interval)
            )
            try:
                await self._reconcile()
                if time.monotonic() - last_reap >= self.settings.session_cleanup_interval:
                    last_reap = time.monotonic()
                    await self.reap_idle()
            except Exception as exc:
                self.log.warning("maintenance failed", error=str(exc))
