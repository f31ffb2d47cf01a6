"""This worker's sessions and the clients they share; taking a session apart.

The registry is the :class:`~workers.session.SessionOwner` of every session handle: handles,
the RPC router and the file operations reach NATS, Redis and the provider through it. What
happens when a runner goes away unexpectedly is not its business: the reconciler registers
that with :meth:`Registry.on_runner_gone`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from broker import subjects
from broker.events import EgressDenied, SessionStopped, encode_event
from broker.sealing import Sealer
from broker.state import SessionStore
from workers.channel import RunnerChannel
from workers.files import register_file_ops
from workers.host import WarmSlots
from workers.metrics import WorkerMetrics
from workers.providers.base import Provider
from workers.rpc import RpcRouter
from workers.sandbox.egress import Denial
from workers.sandbox.policy import parse_test_hosts
from workers.sandbox.pricing import ModelUsage, PriceTable
from workers.sandbox.service import SandboxService
from workers.session import SessionHandle
from workers.settings import WorkerSettings

log = structlog.get_logger("agc.worker")

RunnerGoneHook = Callable[[str, str], Coroutine[Any, Any, None]]


class Registry:
    """The session table (``sessions``), the ones being stopped, and background tasks."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        nc: NATS,
        js: JetStreamContext,
        store: SessionStore,
        provider: Provider,
        metrics: WorkerMetrics,
        sealer: Sealer,
    ) -> None:
        self.settings = settings
        self.worker_id = settings.worker_id
        self.nc, self.js, self.store = nc, js, store
        self.provider = provider
        self.metrics = metrics
        self.sealer = sealer
        self.sessions: dict[str, SessionHandle] = {}
        # Reconciliation leaves these alone while they are being taken apart.
        self.stopping: set[str] = set()
        # False once the worker drains: no recoveries start any more.
        self.running = True
        # The warm pool (workers/pool.py), when AGC_POOL_SIZE and AGC_POOL_CONFIGS ask for one.
        self.pool: WarmSlots | None = None
        # Cold launches in flight, started or waiting for a turn (workers/launcher.py): the
        # pool refills after them, so a slot nobody waits for never slows one somebody does.
        self.cold_launches = 0
        # Launches taken from the queue and not yet over (workers/launcher.py): fetched and
        # not yet read, and those being launched, by session id. With the sessions they make
        # this worker's load, which its heartbeat reports at once when it changes, so peers
        # place the next launch on the lightest worker (workers/placement.py).
        self._unread = 0
        self._launching: set[str] = set()
        self.load_changed = asyncio.Event()
        # The sandbox boundary this worker serves: sockets, model gateway, egress proxy.
        self.sandbox = SandboxService(
            settings.run_dir,
            upstream=settings.anthropic_base_url,
            persist=self._record_usage,
            on_denied=self._egress_denied,
            test_hosts=parse_test_hosts(settings.egress_test_hosts),
            prices=PriceTable(settings.model_prices),
        )
        self.rpc = RpcRouter(self)
        register_file_ops(self.rpc)
        self._bg: set[asyncio.Task[Any]] = set()
        self._gone_hook: RunnerGoneHook | None = None
        self.log = log.bind(worker_id=self.worker_id)

    # -- tasks ---------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a background task whose reference this worker keeps until it ends."""
        task = asyncio.create_task(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)
        return task

    async def cancel_background(self) -> None:
        for t in list(self._bg):
            t.cancel()
        await asyncio.gather(*self._bg, return_exceptions=True)

    # -- the table -----------------------------------------------------------------------
    @property
    def load(self) -> int:
        """Sessions plus launches in hand, each counted once (a launch that made its session
        is in both for a moment)."""
        return len(self.sessions) + self._unread + len(self._launching.difference(self.sessions))

    def notify_load(self) -> None:
        self.load_changed.set()

    def taking(self, n: int) -> None:
        """``n`` launch messages fetched (+) or read (-)."""
        self._unread += n
        self.notify_load()

    @contextlib.contextmanager
    def launching(self, sid: str) -> Iterator[None]:
        """A launch read from its message, from then until it is over."""
        self._launching.add(sid)
        self._unread -= 1
        self.notify_load()
        try:
            yield
        finally:
            self._launching.discard(sid)
            self.notify_load()

    def add(
        self,
        sid: str,
        container_id: str,
        channel: RunnerChannel,
        *,
        last_seq: int = 0,
        boot_id: str = "",
    ) -> SessionHandle:
        """Register a session over an attached channel and start relaying its events."""
        handle = SessionHandle(self, sid, container_id, channel, last_seq=last_seq, boot_id=boot_id)
        self.sessions[sid] = handle
        self.notify_load()
        handle.start_relay()
        return handle

    async def drop(self, handle: SessionHandle) -> None:
        """Forget a session and stop relaying it; its container is left as it is."""
        if self.sessions.get(handle.session_id) is handle:
            del self.sessions[handle.session_id]
            self.notify_load()
        await handle.detach()

    async def detach_all(self) -> None:
        for handle in list(self.sessions.values()):
            await handle.detach()
        self.sessions.clear()

    # -- SessionOwner --------------------------------------------------------------------
    def on_runner_gone(self, hook: RunnerGoneHook) -> None:
        """Call ``hook(session_id, container_id)`` when a runner goes away unasked."""
        self._gone_hook = hook

    async def runner_gone(self, handle: SessionHandle) -> None:
        await self.drop(handle)
        if self.running and self._gone_hook is not None:
            self.spawn(self._gone_hook(handle.session_id, handle.container_id))

    async def stop_session(self, handle: SessionHandle, *, reason: str) -> None:
        """Stop a session: runner, container, volumes, consumer; record it as stopped."""
        sid = handle.session_id
        self.stopping.add(sid)
        try:
            await handle.set_status("stopping", detail=reason)
            await handle.stop_runner(reason)
            await self.drop(handle)
            await self.finish_stop(sid, handle.container_id, reason)
        finally:
            self.stopping.discard(sid)

    # -- the sandbox's reports ------------------------------------------------------------
    async def _record_usage(self, sid: str, usage: ModelUsage, cost: float) -> None:
        await self.store.add_model_usage(
            sid,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens,
            cost_usd=cost,
        )

    def _egress_denied(self, d: Denial) -> None:
        handle = self.sessions.get(d.session_id)
        if handle is None:
            return
        event = EgressDenied(
            session_id=d.session_id,
            host=d.host[:255],
            port=d.port,
            reason=d.reason,
            policy=d.policy,
            method=d.method,
            turn_id=handle.current_turn,
        )
        self.spawn(handle.publish_event(event))

    async def finish_stop(self, sid: str, container_id: str | None, reason: str) -> None:
        """Remove what is left of a stopped session and publish its last event."""
        rec = await self.store.get(sid)
        if rec is not None and rec.sandbox:
            # Revoked first: from here on the session's token opens nothing.
            self.sandbox.unbind(rec.sandbox, sid)
        await self.provider.remove(container_id, sid)
        if rec is not None and rec.sandbox:
            await self.sandbox.remove(rec.sandbox)
        with contextlib.suppress(Exception):
            await self.js.delete_consumer(subjects.CMD_STREAM, subjects.session_consumer(sid))
        await self.store.set_status(sid, "stopped")
        # Last event of the session, published only once its container and volumes are gone.
        await self.js.publish(
            subjects.events(sid), encode_event(SessionStopped(session_id=sid, reason=reason))
        )
        self.log.info("session stopped", session_id=sid, reason=reason)
