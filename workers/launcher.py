"""Launches: pull ``agc.cmd.launch`` from the shared work queue and start sessions.

A worker takes launches while it has room for their sessions (``AGC_MAX_SESSIONS``), and paces
only what costs: at most ``AGC_LAUNCH_CONCURRENCY`` cold launches (a new container, the SDK
import, the CLI's start) run at once, the others wait here with their messages kept in
progress. A launch of a claimed warm slot (an attach and an ``init`` that only binds) never
waits behind them: in a burst, the pool's hits are ready in tens of milliseconds while the
misses start their containers a few at a time. A warm slot that fails falls back to the cold
path, and waits for its turn there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import structlog
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig
from redis.exceptions import RedisError

from broker import subjects
from broker.commands import Launch, decode_command
from broker.pool import SlotRecord
from broker.sealing import SealError
from broker.state import TERMINAL_STATUSES, launch_cancelled
from configs.model import AgentConfig, parse_size
from workers.binding import bind_sandbox, fail_session, init_message, keep_in_progress, unseal
from workers.channel import RunnerChannel
from workers.errors import LaunchFailed, ProviderError, RunnerGone
from workers.placement import RECHECK, Placement
from workers.providers.base import ContainerSpec, decode_config
from workers.pull import DurablePull
from workers.registry import Registry
from workers.session import SessionHandle

log = structlog.get_logger("agc.worker")


class Launcher:
    """Takes launches while this worker has room, a few at a time."""

    def __init__(self, registry: Registry) -> None:
        self.reg = registry
        self.settings = registry.settings
        # Cold launches only: a warm one takes no turn here (see the module docstring).
        self._cold = asyncio.Semaphore(self.settings.launch_concurrency)
        self.inflight: set[asyncio.Task[Any]] = set()
        self.log = log.bind(worker_id=registry.worker_id)

    async def run(self) -> None:
        """Pull launches until the worker drains."""
        cfg = ConsumerConfig(
            durable_name=subjects.LAUNCH_CONSUMER,
            filter_subject=subjects.LAUNCH,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30.0,
            max_deliver=self.settings.max_deliveries,
            max_ack_pending=1000,
        )
        pull = DurablePull(self.reg.js, cfg)
        placement = Placement(self.reg.store, self.reg.worker_id)
        deferring_since: float | None = None
        try:
            while self.reg.running:
                if self.reg.load >= self.settings.max_sessions:
                    await asyncio.sleep(0.5)
                    continue
                # While a lighter peer takes the launches, look again soon (it may catch up),
                # and only every placement_defer take a brief look for one that nobody lighter
                # took (workers/placement.py).
                timeout = 1.0
                if await placement.should_defer(self.reg.load):
                    now = time.monotonic()
                    deferring_since = deferring_since or now
                    if now - deferring_since < self.settings.placement_defer:
                        await asyncio.sleep(RECHECK)
                        continue
                    deferring_since, timeout = None, 0.1
                else:
                    deferring_since = None
                # Taken as long as there is room: pacing happens in launch(), per kind, so a
                # warm launch queued behind cold ones is reached at once.
                for msg in await pull.fetch(batch=1, timeout=timeout):
                    self._start(msg)
        finally:
            await pull.close()

    def _start(self, msg: Msg) -> None:
        task = asyncio.create_task(self.handle(msg))
        self.inflight.add(task)
        self.reg.taking(+1)
        task.add_done_callback(self.inflight.discard)

    async def drain(self, timeout: float) -> None:
        """Let in-flight launches finish for up to ``timeout`` seconds, then cancel them."""
        if self.inflight:
            await asyncio.wait(self.inflight, timeout=timeout)
        for t in list(self.inflight):
            t.cancel()

    async def handle(self, msg: Msg) -> None:
        """Launch one command's session; ack, or term it with the session failed."""
        try:
            cmd = decode_command(msg.data)
            if not isinstance(cmd, Launch):
                raise ValueError(f"expected a launch, got {type(cmd).__name__}")
            subjects.check_session_id(cmd.session_id)
        except ValueError as exc:
            self.reg.taking(-1)
            self.log.warning("poison launch", error=str(exc))
            await msg.term()
            return
        with self.reg.launching(cmd.session_id):
            await self._handle(msg, cmd)

    async def _handle(self, msg: Msg, cmd: Launch) -> None:
        store = self.reg.store
        rec = await store.get(cmd.session_id)
        if (
            rec is None
            or rec.status in TERMINAL_STATUSES
            or (rec.owner and rec.owner != self.reg.worker_id and await store.is_alive(rec.owner))
        ):
            # Deleted before we got to it, or a redelivery somebody already handled.
            await msg.ack()
            return
        if cmd.session_id in self.reg.sessions:
            await msg.ack()
            return
        keepalive = self.reg.spawn(keep_in_progress(msg))
        metrics = self.reg.metrics
        try:
            await self.launch(cmd)
        except LaunchFailed as exc:
            metrics.launches.labels("failed").inc()
            await fail_session(self.reg, cmd.session_id, exc.code, exc.message, exc.detail)
            await msg.term()
        except Exception as exc:
            metrics.launches.labels("failed").inc()
            self.log.exception("launch crashed", session_id=cmd.session_id)
            await fail_session(self.reg, cmd.session_id, "launch_failed", str(exc), "")
            await msg.term()
        else:
            metrics.launches.labels("ok").inc()
            await msg.ack()
            await self._unless_cancelled(cmd.session_id)
        finally:
            keepalive.cancel()

    async def _unless_cancelled(self, sid: str) -> None:
        """Stop a session the API cancelled while we launched it: the client was told it failed,
        so it must never run (a launch still queued is skipped above, in ``handle``).

        Redis may be away just now (restarting): ask again until it answers, for as long as a
        launch may take, rather than let the question go unanswered.
        """
        deadline = time.monotonic() + self.settings.launch_timeout
        delay = 0.1
        while True:
            try:
                rec = await self.reg.store.get(sid)
                break
            except (RedisError, OSError) as exc:
                if time.monotonic() > deadline:
                    self.log.error("cannot read whether the launch was cancelled", error=str(exc))
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        handle = self.reg.sessions.get(sid)
        if handle is not None and (rec is None or launch_cancelled(rec)):
            self.log.info("launch was cancelled by the API: removing its sandbox", session_id=sid)
            await self.reg.stop_session(handle, reason="cancelled")

    async def launch(self, cmd: Launch) -> SessionHandle:
        """Create, start and initialise a session's container; return once the runner is ready.

        A claimed warm slot is bound at once; a cold launch waits for one of the
        ``launch_concurrency`` turns first.
        """
        sid = cmd.session_id
        reg = self.reg
        try:
            api_key, mcp_env = unseal(reg.sealer, sid, cmd.sealed_api_key, cmd.sealed_mcp_env)
        except SealError as exc:
            raise LaunchFailed(
                "the launch's sealed credentials do not open with this worker's AGC_SECRET_KEY",
                code="secret_mismatch",
            ) from exc
        config = decode_config(cmd.config)
        limits = config.resource_limits
        spec = ContainerSpec(
            session_id=sid,
            worker_id=reg.worker_id,
            cluster=self.settings.cluster,
            image=self.settings.agent_image,
            cpu_quota=limits.cpu_quota,
            memory=limits.memory_limit,
            pids_limit=limits.pids_limit,
            tmp_size=self.settings.tmp_size,
            storage_bytes=limits.storage_bytes,
            home_bytes=parse_size(self.settings.home_size),
        )
        t0 = time.perf_counter()
        if reg.pool is not None:
            slot = await reg.pool.take(sid)
            if slot is not None:
                handle = await self._launch_warm(cmd, config, slot, api_key, mcp_env, t0)
                if handle is not None:
                    return handle
            else:
                reg.metrics.pool_claims.labels("cold").inc()
        reg.cold_launches += 1
        try:
            async with self._cold:
                return await self._launch_cold(cmd, config, spec, api_key, mcp_env, t0)
        finally:
            reg.cold_launches -= 1

    async def _launch_cold(
        self,
        cmd: Launch,
        config: AgentConfig,
        spec: ContainerSpec,
        api_key: str,
        mcp_env: dict[str, dict[str, str]],
        t0: float,
    ) -> SessionHandle:
        """A new container for the session: create, attach, start, bind its sandbox, init."""
        sid = cmd.session_id
        reg, provider = self.reg, self.reg.provider
        container_id = ""
        # The container's only way out: a fresh sandbox directory with the gateway's sockets.
        sandbox = reg.sandbox.new_name()
        spec = dataclasses.replace(
            spec, sandbox=sandbox, sandbox_dir=str(await reg.sandbox.open(sandbox))
        )
        try:
            # A redelivered launch (its first worker died mid-way) may find a half-made
            # container of the same name: start again from nothing.
            await provider.remove_session_container(sid)
            container_id = await provider.create(spec)
            await reg.store.set_owner(sid, reg.worker_id, container_id)
            await reg.store.update(sid, launch="cold")
            reader, writer = await provider.attach(container_id)
            await provider.start(container_id)
        except ProviderError as exc:
            await provider.remove(container_id or None, sid)
            await reg.sandbox.remove(sandbox)
            raise LaunchFailed(str(exc), code="container_failed") from exc
        handle = reg.add(sid, container_id, RunnerChannel(reader, writer, session_id=sid))
        try:
            bound = await bind_sandbox(reg, sid, sandbox, api_key, config)
            await handle.init(init_message(self.settings, sid, bound, mcp_env, None))
            await asyncio.wait_for(asyncio.shield(handle.ready), self.settings.launch_timeout)
        except (TimeoutError, RunnerGone) as exc:
            detail = str(exc) or handle.channel.stderr_tail()
            handle.stopping = True
            await reg.drop(handle)
            await provider.remove(container_id, sid, grace=1)
            await reg.sandbox.remove(sandbox)
            reason = (
                "the agent runner did not become ready in time"
                if isinstance(exc, asyncio.TimeoutError)
                else "the agent runner failed to start"
            )
            raise LaunchFailed(reason, detail=detail, code="runner_failed") from exc
        return await self._running(handle, t0, warm=False)

    async def _running(self, handle: SessionHandle, t0: float, *, warm: bool) -> SessionHandle:
        """The session is ready: take its commands, record how long the launch took."""
        handle.start_commands()
        seconds = time.perf_counter() - t0
        await handle.set_status(
            "running", launch_ms=round(seconds * 1000), launch="warm" if warm else "cold"
        )
        self.reg.metrics.launch_seconds.observe(seconds)
        self.log.info(
            "session ready",
            session_id=handle.session_id,
            container=handle.container_id[:12],
            seconds=round(seconds, 3),
            warm=warm,
        )
        return handle

    async def _launch_warm(
        self,
        cmd: Launch,
        config: AgentConfig,
        slot: SlotRecord,
        api_key: str,
        mcp_env: dict[str, dict[str, str]],
        t0: float,
    ) -> SessionHandle | None:
        """Bind a claimed warm slot to the session; None (slot removed) to launch cold instead.

        A slot that fails here (its runner died while it waited, its container is gone) never
        fails the launch: it is removed, and the caller starts the session cold.
        """
        sid, reg = cmd.session_id, self.reg
        try:
            await reg.store.set_owner(sid, reg.worker_id, slot.container_id)
            reader, writer = await reg.provider.attach(slot.container_id)
        except ProviderError as exc:
            self.log.warning("warm slot unusable", session_id=sid, error=str(exc))
            reg.metrics.pool_claims.labels("dead").inc()
            await reg.provider.remove(slot.container_id, sid, grace=1)
            if slot.sandbox:
                await reg.sandbox.remove(slot.sandbox)
            return None
        handle = reg.add(sid, slot.container_id, RunnerChannel(reader, writer, session_id=sid))
        # Before the init: whoever sees session.ready finds the record saying how it launched.
        await reg.store.update(sid, launch="warm")
        try:
            if not slot.sandbox:
                raise RunnerGone("the warm slot has no sandbox")
            if slot.worker_id != reg.worker_id:
                # Another worker made the slot and serves its sockets: its gateway would know
                # nothing of this binding. Take the sockets over (the maker lets them go).
                await reg.sandbox.open(slot.sandbox)
            bound = await bind_sandbox(reg, sid, slot.sandbox, api_key, config)
            await handle.init(init_message(self.settings, sid, bound, mcp_env, None))
            await asyncio.wait_for(asyncio.shield(handle.ready), self.settings.launch_timeout)
        except (TimeoutError, RunnerGone) as exc:
            self.log.warning(
                "warm slot failed; launching cold",
                session_id=sid,
                error=str(exc) or handle.channel.stderr_tail() or type(exc).__name__,
            )
            reg.metrics.pool_claims.labels("dead").inc()
            handle.stopping = True
            await reg.drop(handle)
            await reg.provider.remove(slot.container_id, sid, grace=1)
            if slot.sandbox:
                reg.sandbox.unbind(slot.sandbox, sid)
                await reg.sandbox.remove(slot.sandbox)
            return None
        reg.metrics.pool_claims.labels("hit").inc()
        return await self._running(handle, t0, warm=True)
