"""The worker process: connect, compose its parts, run them, drain on SIGTERM.

The parts, one job each: :mod:`workers.launcher` (launches), :mod:`workers.session` (one
session's event relay and commands), :mod:`workers.reconcile` (claim, adopt, recover),
:mod:`workers.upkeep` (heartbeat, idle reaper), :mod:`workers.files` (file operations) and
:mod:`workers.registry` (the session table they share), all over a
:class:`~workers.providers.base.Provider`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog

from broker.connect import connect_nats, connect_redis, nats_auth
from broker.pool import PoolStore
from broker.sealing import Sealer
from broker.state import SessionStore
from broker.streams import DAY, StreamSettings, ensure_streams
from workers.launcher import Launcher
from workers.metrics import WorkerMetrics
from workers.pool import WarmPool
from workers.providers.base import Provider
from workers.providers.docker import DockerProvider
from workers.reconcile import Reconciler
from workers.registry import Registry
from workers.settings import WorkerSettings
from workers.storage import WorkspaceStorage
from workers.storage import available as storage_unavailable
from workers.upkeep import Upkeep

log = structlog.get_logger("agc.worker")


class Worker:
    """One worker process: owns its sessions until it drains."""

    registry: Registry
    launcher: Launcher
    reconciler: Reconciler
    upkeep: Upkeep

    def __init__(self, settings: WorkerSettings, provider: Provider | None = None) -> None:
        self.settings = settings
        self.id = settings.worker_id
        self.metrics = WorkerMetrics()
        self._provider = provider
        self._stop_event = asyncio.Event()
        self.log = log.bind(worker_id=self.id)

    async def assemble(self) -> None:
        """Connect to NATS, Redis and the provider and build the parts; start nothing."""
        provider = self._provider or await DockerProvider.connect(self._storage())
        redis = await connect_redis(self.settings)
        nc = await connect_nats(self.settings.nats_url, name=self.id, auth=nats_auth(self.settings))
        js = nc.jetstream()
        await ensure_streams(
            js,
            StreamSettings(
                events_max_age=self.settings.events_max_age_days * DAY,
                replicas=self.settings.nats_replicas,  # the API ensures the same: keep in step
            ),
        )
        self._redis = redis
        self.registry = reg = Registry(
            self.settings,
            nc=nc,
            js=js,
            store=SessionStore(redis, prefix=self.settings.redis_prefix),
            provider=provider,
            metrics=self.metrics,
            sealer=Sealer(self.settings.secret()),
        )
        self.launcher = Launcher(reg)
        self.reconciler = Reconciler(reg)
        # Every worker has a pool, even with AGC_POOL_SIZE=0 or no AGC_POOL_CONFIGS: it keeps
        # no slots then, but still takes a slot another worker made when a launch claimed it.
        reg.pool = WarmPool(reg, PoolStore(redis, prefix=self.settings.redis_prefix))
        self.upkeep = Upkeep(reg, self.reconciler.reconcile)

    def _storage(self) -> WorkspaceStorage | None:
        """Fixed-size workspaces when enabled and possible here (else a warning: uncapped)."""
        if not self.settings.storage_quota:
            return None
        if (reason := storage_unavailable()) is not None:
            self.log.warning("storage_limit is NOT enforced", reason=reason)
            return None
        return WorkspaceStorage(self.settings.storage_dir or self.settings.state_dir / "storage")

    async def start(self) -> None:
        """Assemble, announce liveness, reconcile containers, start the loops."""
        await self.assemble()
        reg = self.registry
        await self.upkeep.heartbeat_once()
        await self.reconciler.reconcile()
        for coro in (
            self.upkeep.heartbeat_loop(),
            self.launcher.run(),
            self.upkeep.maintenance_loop(),
        ):
            reg.spawn(coro)
        if reg.pool is not None:
            reg.spawn(reg.pool.run())
        self.log.info(
            "worker started", image=self.settings.agent_image, run_dir=str(self.settings.run_dir)
        )

    async def run_until_signalled(self) -> None:
        self.metrics.serve(self.settings.metrics_port)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop_event.set)
        await self.start()
        await self._stop_event.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        """Drain: take no more work, finish in-flight launches (bounded), detach, leave.

        Containers keep running: the next worker with this id (or another on this host)
        re-attaches them.
        """
        reg = self.registry
        self.log.info("worker draining", inflight=len(self.launcher.inflight))
        reg.running = False
        await self.launcher.drain(self.settings.drain_timeout)
        await reg.cancel_background()
        if reg.pool is not None:
            # Slots are not sessions: nobody would re-attach them; remove them now.
            await reg.pool.drain()
        await reg.detach_all()
        # Sockets stop answering; their directories stay for the next worker on this host.
        await reg.sandbox.aclose()
        with contextlib.suppress(Exception):
            await reg.store.worker_gone(self.id)
        with contextlib.suppress(Exception):
            # Subscriptions are gone already; drain() would wait out its 30 s timeout.
            await reg.nc.close()
        with contextlib.suppress(Exception):
            await self._redis.aclose()
        reg.provider.close()
        self.log.info("worker stopped")


async def run_worker(settings: WorkerSettings | None = None) -> None:
    """Run one worker until SIGTERM/SIGINT."""
    worker = Worker(settings or WorkerSettings())
    await worker.run_until_signalled()
