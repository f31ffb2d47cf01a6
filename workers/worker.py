"""The worker process: pulls launches, owns sessions, heartbeats, reconciles, reaps, drains."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Coroutine
from typing import Any

import msgspec
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from redis.asyncio import Redis

from broker import subjects
from broker.commands import Launch, decode_command
from broker.connect import connect_nats, connect_redis, nats_auth
from broker.events import ErrorEvent, SessionStopped, encode_event
from broker.runner_wire import Init
from broker.sealing import Sealer, SealError
from broker.state import TERMINAL_STATUSES, SessionStore, launch_cancelled
from broker.streams import DAY, StreamSettings, ensure_streams
from workers.channel import RunnerChannel
from workers.docker_provider import ContainerSpec, DockerProvider
from workers.errors import LaunchFailed, ProviderError, RunnerGone, WorkerError
from workers.files import register_file_ops
from workers.metrics import WorkerMetrics
from workers.pull import DurablePull
from workers.rpc import RpcRouter
from workers.session import SessionHandle
from workers.settings import WorkerSettings

log = structlog.get_logger("agc.worker")


class Worker:
    """Owns this process's sessions; see DESIGN.md for the protocol it follows."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self.id = settings.worker_id
        self.sealer = Sealer(settings.secret())
        self.sessions: dict[str, SessionHandle] = {}
        self.nc: NATS
        self.js: JetStreamContext
        self.redis: Redis
        self.store: SessionStore
        self.provider: DockerProvider
        self._running = True
        self._stop_event = asyncio.Event()
        self._launch_slots = asyncio.Semaphore(settings.launch_concurrency)
        self._inflight: set[asyncio.Task[Any]] = set()
        self._bg: set[asyncio.Task[Any]] = set()
        self._stopping: set[str] = set()
        self.started_at = time.time()
        self.rpc = RpcRouter(self)
        self.metrics = WorkerMetrics()
        register_file_ops(self.rpc)
        self.log = log.bind(worker_id=self.id)

    # -- process lifecycle ---------------------------------------------------------------
    async def start(self) -> None:
        """Connect to NATS, Redis and Docker, reconcile containers, start the loops."""
        self.provider = await DockerProvider.connect()
        self.redis = await connect_redis(self.settings)
        self.store = SessionStore(self.redis, prefix=self.settings.redis_prefix)
        self.nc = await connect_nats(
            self.settings.nats_url, name=self.id, auth=nats_auth(self.settings)
        )
        self.js = self.nc.jetstream()
        await ensure_streams(
            self.js,
            StreamSettings(
                events_max_age=self.settings.events_max_age_days * DAY,
                replicas=self.settings.nats_replicas,  # the API ensures the same: keep in step
            ),
        )
        await self._heartbeat_once()
        await self.reconcile()
        for coro in (self._heartbeat_loop(), self._launch_loop(), self._maintenance_loop()):
            self.spawn(coro)
        self.log.info(
            "worker started", image=self.settings.agent_image, network=self.settings.agent_network
        )

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a background task whose reference this worker keeps until it ends."""
        task = asyncio.create_task(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)
        return task

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
        self.log.info("worker draining", inflight=len(self._inflight))
        self._running = False
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=self.settings.drain_timeout)
        for t in list(self._inflight):
            t.cancel()
        for t in list(self._bg):
            t.cancel()
        await asyncio.gather(*self._bg, return_exceptions=True)
        for handle in list(self.sessions.values()):
            await handle.detach()
        self.sessions.clear()
        with contextlib.suppress(Exception):
            await self.store.worker_gone(self.id)
        with contextlib.suppress(Exception):
            # Subscriptions are gone already; drain() would wait out its 30 s timeout.
            await self.nc.close()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        self.provider.close()
        self.log.info("worker stopped")

    # -- liveness ------------------------------------------------------------------------
    async def _heartbeat_once(self) -> None:
        self.metrics.sessions.set(len(self.sessions))
        await self.store.heartbeat(
            self.id,
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "sessions": len(self.sessions),
                "max_sessions": self.settings.max_sessions,
                "started_at": self.started_at,
            },
            ttl=self.settings.heartbeat_ttl,
        )

    async def _heartbeat_loop(self) -> None:
        while self._running:
            try:
                await self._heartbeat_once()
            except Exception as exc:  # Redis restarting: keep trying
                self.log.warning("heartbeat failed", error=str(exc))
            await asyncio.sleep(self.settings.heartbeat_interval)

    # -- launches ------------------------------------------------------------------------
    async def _launch_loop(self) -> None:
        cfg = ConsumerConfig(
            durable_name=subjects.LAUNCH_CONSUMER,
            filter_subject=subjects.LAUNCH,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30.0,
            max_deliver=self.settings.max_deliveries,
            max_ack_pending=1000,
        )
        pull = DurablePull(self.js, cfg)
        try:
            while self._running:
                if len(self.sessions) + len(self._inflight) >= self.settings.max_sessions:
                    await asyncio.sleep(0.5)
                    continue
                await self._launch_slots.acquire()
                msgs = await pull.fetch(batch=1, timeout=1.0)
                if not msgs:
                    self._launch_slots.release()
                for msg in msgs:
                    task = asyncio.create_task(self._handle_launch(msg))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
                    task.add_done_callback(lambda _t: self._launch_slots.release())
        finally:
            await pull.close()

    async def _handle_launch(self, msg: Msg) -> None:
        try:
            cmd = decode_command(msg.data)
            if not isinstance(cmd, Launch):
                raise ValueError(f"expected a launch, got {type(cmd).__name__}")
            subjects.check_session_id(cmd.session_id)
        except ValueError as exc:
            self.log.warning("poison launch", error=str(exc))
            await msg.term()
            return
        rec = await self.store.get(cmd.session_id)
        if (
            rec is None
            or rec.status in TERMINAL_STATUSES
            or (rec.owner and rec.owner != self.id and await self.store.is_alive(rec.owner))
        ):
            # Deleted before we got to it, or a redelivery somebody already handled.
            await msg.ack()
            return
        if cmd.session_id in self.sessions:
            await msg.ack()
            return
        keepalive = self.spawn(_keep_in_progress(msg))
        try:
            await self.launch(cmd)
        except LaunchFailed as exc:
            self.metrics.launches.labels("failed").inc()
            await self._fail_session(cmd.session_id, exc.code, exc.message, exc.detail)
            await msg.term()
        except Exception as exc:
            self.metrics.launches.labels("failed").inc()
            self.log.exception("launch crashed", session_id=cmd.session_id)
            await self._fail_session(cmd.session_id, "launch_failed", str(exc), "")
            await msg.term()
        else:
            self.metrics.launches.labels("ok").inc()
            await msg.ack()
            rec = await self.store.get(cmd.session_id)
            handle = self.sessions.get(cmd.session_id)
            if handle is not None and (rec is None or launch_cancelled(rec)):
                # The API cancelled it meanwhile (the client was told it failed): never run it.
                await self.stop_session(handle, reason="cancelled")
        finally:
            keepalive.cancel()

    async def launch(self, cmd: Launch) -> SessionHandle:
        """Create, start and initialise a session's container; return once the runner is ready."""
        sid = cmd.session_id
        slog = self.log.bind(session_id=sid)
        try:
            api_key, mcp_env = self._unseal(sid, cmd.sealed_api_key, cmd.sealed_mcp_env)
        except SealError as exc:
            raise LaunchFailed(
                "the launch's sealed credentials do not open with this worker's AGC_SECRET_KEY",
                code="secret_mismatch",
            ) from exc
        limits = cmd.config.get("resource_limits") or {}
        spec = ContainerSpec(
            session_id=sid,
            worker_id=self.id,
            cluster=self.settings.cluster,
            image=self.settings.agent_image,
            network=self.settings.agent_network,
            cpu_quota=int(limits.get("cpu_quota", 100_000)),
            memory=str(limits.get("memory_limit", "2g")),
            pids_limit=int(limits.get("pids_limit", 256)),
            tmp_size=self.settings.tmp_size,
        )
        t0 = time.perf_counter()
        container_id = ""
        try:
            # A redelivered launch (its first worker died mid-way) may find a half-made
            # container of the same name: start again from nothing.
            await self.provider.remove_session_container(sid)
            container_id = await self.provider.create(spec)
            await self.store.set_owner(sid, self.id, container_id)
            reader, writer = await self.provider.attach(container_id)
            await self.provider.start(container_id)
        except ProviderError as exc:
            await self.provider.remove(container_id or None, sid)
            raise LaunchFailed(str(exc), code="container_failed") from exc
        handle = SessionHandle(
            self, sid, container_id, RunnerChannel(reader, writer, session_id=sid)
        )
        self.sessions[sid] = handle
        handle.start_relay()
        try:
            await handle.init(self._init_message(sid, cmd.config, api_key, mcp_env, resume=None))
            await asyncio.wait_for(asyncio.shield(handle.ready), self.settings.launch_timeout)
        except (TimeoutError, RunnerGone) as exc:
            detail = str(exc) or handle.channel.stderr_tail()
            handle.stopping = True
            self.sessions.pop(sid, None)
            await handle.detach()
            await self.provider.remove(container_id, sid, grace=1)
            reason = (
                "the agent runner did not become ready in time"
                if isinstance(exc, asyncio.TimeoutError)
                else "the agent runner failed to start"
            )
            raise LaunchFailed(reason, detail=detail, code="runner_failed") from exc
        handle.start_commands()
        await handle.set_status("running")
        seconds = time.perf_counter() - t0
        self.metrics.launch_seconds.observe(seconds)
        slog.info("session ready", container=container_id[:12], seconds=round(seconds, 3))
        return handle

    def _unseal(
        self, sid: str, sealed_key: str, sealed_mcp_env: str | None
    ) -> tuple[str, dict[str, dict[str, str]]]:
        """The session's API key and MCP credentials; raises SealError on a key mismatch."""
        mcp_env: dict[str, dict[str, str]] = (
            msgspec.json.decode(self.sealer.open(sealed_mcp_env, context=sid))
            if sealed_mcp_env
            else {}
        )
        return self.sealer.open(sealed_key, context=sid), mcp_env

    def _init_message(
        self,
        sid: str,
        config: dict[str, Any],
        api_key: str,
        mcp_env: dict[str, dict[str, str]],
        resume: str | None,
    ) -> Init:
        env: dict[str, str] = {}
        if self.settings.anthropic_base_url:
            env["ANTHROPIC_BASE_URL"] = self.settings.anthropic_base_url
        return Init(
            session_id=sid,
            config=config,
            api_key=api_key,
            mcp_env=mcp_env,
            env=env,
            resume=resume,
            worker_id=self.id,
        )

    async def _fail_session(self, sid: str, code: str, message: str, detail: str) -> None:
        rec = await self.store.get(sid)
        if rec is not None and rec.status in TERMINAL_STATUSES:
            return  # already over (e.g. deleted meanwhile): its last event is out
        self.log.warning("session failed", session_id=sid, code=code, message=message)
        await self.store.set_status(sid, "failed", error=message)
        for event in (
            ErrorEvent(session_id=sid, code=code, message=message, detail=detail, fatal=True),
            SessionStopped(session_id=sid, reason="failed"),
        ):
            await self.js.publish(subjects.events(sid), encode_event(event))

    # -- stopping ------------------------------------------------------------------------
    async def stop_session(self, handle: SessionHandle, *, reason: str) -> None:
        """Stop a session: runner, container, volumes, consumer; record it as stopped."""
        sid = handle.session_id
        # Reconciliation must leave a session alone while we take it apart.
        self._stopping.add(sid)
        try:
            await handle.set_status("stopping", detail=reason)
            await handle.stop_runner(reason)
            self.sessions.pop(sid, None)
            await handle.detach()
            await self._finish_stop(sid, handle.container_id, reason)
        finally:
            self._stopping.discard(sid)

    async def _finish_stop(self, sid: str, container_id: str | None, reason: str) -> None:
        await self.provider.remove(container_id, sid)
        with contextlib.suppress(Exception):
            await self.js.delete_consumer(subjects.CMD_STREAM, subjects.session_consumer(sid))
        await self.store.set_status(sid, "stopped")
        # Last event of the session, published only once its container and volumes are gone.
        await self.js.publish(
            subjects.events(sid), encode_event(SessionStopped(session_id=sid, reason=reason))
        )
        self.log.info("session stopped", session_id=sid, reason=reason)

    async def on_runner_gone(self, handle: SessionHandle) -> None:
        """The runner's channel closed unexpectedly: restart it once with its conversation."""
        sid = handle.session_id
        self.sessions.pop(sid, None)
        await handle.detach()
        if not self._running:
            return
        self.spawn(self._recover(sid, handle.container_id))

    async def _recover(self, sid: str, container_id: str) -> None:
        rec = await self.store.get(sid)
        if rec is None or rec.status in TERMINAL_STATUSES or rec.status == "stopping":
            return
        try:
            if await self.provider.is_running(container_id):
                # Only our attach socket broke; the runner itself is fine.
                await self.resume_session(sid, container_id, fresh_runner=False)
                return
            self.log.warning("runner exited; restarting it with its conversation", session_id=sid)
            self.metrics.recoveries.labels("restart").inc()
            await self.provider.start(container_id)
            await self.resume_session(sid, container_id, fresh_runner=True)
        except Exception as exc:
            self.log.exception("recovery failed", session_id=sid)
            self.metrics.recoveries.labels("failed").inc()
            await self.provider.remove(container_id, sid, grace=1)
            await self._fail_session(
                sid, "runner_lost", "the agent runner stopped and could not be restarted", str(exc)
            )

    async def resume_session(self, sid: str, container_id: str, *, fresh_runner: bool) -> None:
        """Attach to a session's container; re-initialise its runner if it is a new process."""
        rec = await self.store.get(sid)
        if rec is None:
            raise WorkerError(f"session {sid} has no record")
        reader, writer = await self.provider.attach(container_id)
        handle = SessionHandle(
            self,
            sid,
            container_id,
            RunnerChannel(reader, writer, session_id=sid),
            last_seq=0 if fresh_runner else rec.last_seq,
            boot_id="" if fresh_runner else rec.boot_id,
        )
        self.sessions[sid] = handle
        handle.start_relay()
        if fresh_runner:
            api_key, mcp_env = self._unseal(sid, rec.sealed_api_key, rec.sealed_mcp_env)
            config = msgspec.json.decode(await self._config_of(sid))
            await handle.init(
                self._init_message(sid, config, api_key, mcp_env, resume=rec.sdk_session_id or None)
            )
            await asyncio.wait_for(asyncio.shield(handle.ready), self.settings.launch_timeout)
        else:
            handle.ready.set_result(None)
            await handle.attach()
        handle.status = rec.status
        handle.start_commands()
        self.metrics.recoveries.labels("reattach").inc()
        self.log.info(
            "session re-attached", session_id=sid, fresh_runner=fresh_runner, after_seq=rec.last_seq
        )
        if rec.status in ("starting", "busy"):
            await handle.set_status("idle" if fresh_runner else rec.status)

    async def _config_of(self, sid: str) -> bytes:
        raw = await self.store.get_config(sid)
        if raw is None:
            raise WorkerError(f"session {sid} has no stored config")
        return raw

    # -- reconciliation ------------------------------------------------------------------
    async def reconcile(self) -> None:
        """Adopt what this worker owns (or what a dead worker owned), remove what nobody owns."""
        try:
            containers = await self.provider.list_managed(self.settings.cluster)
        except Exception as exc:
            self.log.warning("cannot list containers", error=str(exc))
            return
        for c in containers:
            if c.session_id in self.sessions or c.session_id in self._stopping:
                continue
            rec = await self.store.get(c.session_id) if c.session_id else None
            if rec is not None and rec.status == "stopping":
                if rec.owner == self.id or (rec.owner and await self.store.is_alive(rec.owner)):
                    continue  # a stop in progress
                # Its owner died mid-stop: finish the job.
                if await self.store.claim(c.session_id, self.id, rec.owner):
                    await self._finish_stop(c.session_id, c.container_id, "owner_lost")
                continue
            if rec is None or rec.status in TERMINAL_STATUSES:
                self.log.info(
                    "removing orphan container",
                    session_id=c.session_id,
                    container=c.container_id[:12],
                )
                await self.provider.remove(c.container_id, c.session_id, grace=1)
                continue
            if rec.status == "starting" or not rec.owner:
                # A launch in flight, ours or another worker's (its container exists before
                # its owner is recorded). A dead launcher's command is redelivered, and the
                # next launcher replaces the half-made container.
                continue
            mine = rec.owner == self.id
            if not mine:
                if await self.store.is_alive(rec.owner):
                    continue
                if not await self.store.claim(c.session_id, self.id, rec.owner):
                    continue
                self.log.info("adopting session", session_id=c.session_id, previous=rec.owner)
                self.metrics.recoveries.labels("adopt").inc()
            running = c.status == "running"
            try:
                if not running:
                    await self.provider.start(c.container_id)
                await self.resume_session(c.session_id, c.container_id, fresh_runner=not running)
            except Exception as exc:
                self.log.exception("re-attach failed", session_id=c.session_id)
                await self.provider.remove(c.container_id, c.session_id, grace=1)
                await self._fail_session(
                    c.session_id,
                    "reattach_failed",
                    "the session's container could not be re-attached",
                    str(exc),
                )
        # Sessions recorded as ours whose container vanished cannot be recovered.
        live = {c.session_id for c in containers}
        for sid in await self.store.owned_by(self.id):
            if sid in self.sessions or sid in live or sid in self._stopping:
                continue
            rec = await self.store.get(sid)
            if rec is not None and rec.status not in (*TERMINAL_STATUSES, "starting", "stopping"):
                await self._fail_session(
                    sid, "container_lost", "the session's container no longer exists", ""
                )

    async def reap_idle(self) -> None:
        """Stop sessions whose last real use is older than the idle timeout."""
        now = time.time()
        for sid, handle in list(self.sessions.items()):
            rec = await self.store.get(sid)
            if rec is None or handle.stopping or rec.status == "busy":
                continue
            if now - rec.last_active >= self.settings.session_idle_timeout:
                self.log.info("stopping idle session", session_id=sid)
                self.spawn(self.stop_session(handle, reason="idle_timeout"))

    async def _maintenance_loop(self) -> None:
        last_reap = time.monotonic()
        while self._running:
            # Often enough to adopt a dead worker's sessions soon after its liveness lapses.
            await asyncio.sleep(
                min(5.0, self.settings.heartbeat_ttl, self.settings.session_cleanup_interval)
            )
            try:
                await self.reconcile()
                if time.monotonic() - last_reap >= self.settings.session_cleanup_interval:
                    last_reap = time.monotonic()
                    await self.reap_idle()
            except Exception as exc:
                self.log.warning("maintenance failed", error=str(exc))


async def _keep_in_progress(msg: Msg, every: float = 10.0) -> None:
    """Tell JetStream a long launch is still being worked on, so it is not redelivered."""
    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(Exception):
            await msg.in_progress()


async def run_worker(settings: WorkerSettings | None = None) -> None:
    """Run one worker until SIGTERM/SIGINT."""
    worker = Worker(settings or WorkerSettings())
    await worker.run_until_signalled()
