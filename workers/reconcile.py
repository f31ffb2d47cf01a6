"""Claim and reconcile: match the provider's containers with the sessions recorded in Redis.

Adopts what this worker owns (after its own restart) or what a dead worker owned, finishes a
dead owner's stop, removes containers nobody owns, fails sessions whose container vanished,
and restarts a runner that went away unasked.
"""

from __future__ import annotations

import asyncio

import msgspec
import structlog

from broker.state import TERMINAL_STATUSES
from workers.binding import bind_sandbox, fail_session, init_message, unseal
from workers.channel import RunnerChannel
from workers.errors import WorkerError
from workers.lost_hosts import end_lost_sessions
from workers.providers.base import decode_config
from workers.registry import Registry

log = structlog.get_logger("agc.worker")


class Reconciler:
    """Keeps this worker's idea of its sessions true to the containers that exist."""

    def __init__(self, registry: Registry) -> None:
        self.reg = registry
        self.log = log.bind(worker_id=registry.worker_id)
        registry.on_runner_gone(self.recover)

    async def reconcile(self) -> None:
        """Adopt what this worker owns (or what a dead worker owned), remove what nobody owns."""
        reg, store, provider = self.reg, self.reg.store, self.reg.provider
        me = reg.worker_id
        try:
            containers = await provider.list_managed(reg.settings.cluster)
        except Exception as exc:
            self.log.warning("cannot list containers", error=str(exc))
            return
        for c in containers:
            if c.session_id in reg.sessions or c.session_id in reg.stopping:
                continue
            rec = await store.get(c.session_id) if c.session_id else None
            if c.pool and rec is None:
                continue  # a warm slot no launch has claimed: the pool's (workers/pool.py)
            if rec is not None and rec.status == "stopping":
                if rec.owner == me or (rec.owner and await store.is_alive(rec.owner)):
                    continue  # a stop in progress
                # Its owner died mid-stop: finish the job.
                if await store.claim(c.session_id, me, rec.owner):
                    await reg.finish_stop(c.session_id, c.container_id, "owner_lost")
                continue
            if rec is None or rec.status in TERMINAL_STATUSES:
                self.log.info(
                    "removing orphan container",
                    session_id=c.session_id,
                    container=c.container_id[:12],
                )
                await provider.remove(c.container_id, c.session_id, grace=1)
                if c.sandbox:
                    await reg.sandbox.remove(c.sandbox)
                continue
            if rec.status == "starting" or not rec.owner:
                # A launch in flight, ours or another worker's (its container exists before
                # its owner is recorded). A dead launcher's command is redelivered, and the
                # next launcher replaces the half-made container.
                continue
            if rec.owner != me:
                if await store.is_alive(rec.owner):
                    continue
                if not await store.claim(c.session_id, me, rec.owner):
                    continue
                self.log.info("adopting session", session_id=c.session_id, previous=rec.owner)
                reg.metrics.recoveries.labels("adopt").inc()
            running = c.status == "running"
            try:
                if not running:
                    await provider.start(c.container_id)
                await self.resume_session(c.session_id, c.container_id, fresh_runner=not running)
            except Exception as exc:
                self.log.exception("re-attach failed", session_id=c.session_id)
                await provider.remove(c.container_id, c.session_id, grace=1)
                await fail_session(
                    reg,
                    c.session_id,
                    "reattach_failed",
                    "the session's container could not be re-attached",
                    str(exc),
                )
        # Sessions recorded as ours whose container vanished cannot be recovered.
        live = {c.session_id for c in containers}
        for sid in await store.owned_by(me):
            if sid in reg.sessions or sid in live or sid in reg.stopping:
                continue
            rec = await store.get(sid)
            if rec is not None and rec.status not in (*TERMINAL_STATUSES, "starting", "stopping"):
                await fail_session(
                    reg, sid, "container_lost", "the session's container no longer exists", ""
                )
        # A dead worker's sessions nobody could adopt above: their host is lost.
        await end_lost_sessions(reg)

    async def recover(self, sid: str, container_id: str) -> None:
        """The runner's channel closed unasked: re-attach, or restart it with its conversation."""
        reg = self.reg
        rec = await reg.store.get(sid)
        if rec is None or rec.status in TERMINAL_STATUSES or rec.status == "stopping":
            return
        try:
            if await reg.provider.is_running(container_id):
                # Only our attach socket broke; the runner itself is fine.
                await self.resume_session(sid, container_id, fresh_runner=False)
                return
            self.log.warning("runner exited; restarting it with its conversation", session_id=sid)
            reg.metrics.recoveries.labels("restart").inc()
            await reg.provider.start(container_id)
            await self.resume_session(sid, container_id, fresh_runner=True)
        except Exception as exc:
            self.log.exception("recovery failed", session_id=sid)
            reg.metrics.recoveries.labels("failed").inc()
            await reg.provider.remove(container_id, sid, grace=1)
            await fail_session(
                reg,
                sid,
                "runner_lost",
                "the agent runner stopped and could not be restarted",
                str(exc),
            )

    async def resume_session(self, sid: str, container_id: str, *, fresh_runner: bool) -> None:
        """Attach to a session's container; re-initialise its runner if it is a new process."""
        reg = self.reg
        rec = await reg.store.get(sid)
        if rec is None:
            raise WorkerError(f"session {sid} has no record")
        if not rec.sandbox:
            raise WorkerError(f"session {sid}'s container has no sandbox (made before the gateway)")
        # Serve the sandbox's sockets again (this worker restarted, or adopts the session).
        await reg.sandbox.open(rec.sandbox)
        api_key, mcp_env = unseal(reg.sealer, sid, rec.sealed_api_key, rec.sealed_mcp_env)
        raw = await reg.store.get_config(sid)
        if raw is None:
            raise WorkerError(f"session {sid} has no stored config")
        config = decode_config(msgspec.json.decode(raw))
        if not fresh_runner:
            # The runner still holds its token: bind by the hash its record keeps.
            reg.sandbox.rebind(rec.sandbox, sid, rec.gateway_token_sha256, api_key, config)
        reader, writer = await reg.provider.attach(container_id)
        handle = reg.add(
            sid,
            container_id,
            RunnerChannel(reader, writer, session_id=sid),
            last_seq=0 if fresh_runner else rec.last_seq,
            boot_id="" if fresh_runner else rec.boot_id,
        )
        if fresh_runner:
            # A new runner process: a new token.
            bound = await bind_sandbox(reg, sid, rec.sandbox, api_key, config)
            # The restarted runner starts with the tools a person allowed for this session.
            grants = await handle.approvals.grants()
            await handle.init(
                init_message(
                    reg.settings,
                    sid,
                    bound,
                    mcp_env,
                    resume=rec.sdk_session_id or None,
                    session_grants=grants,
                )
            )
            await asyncio.wait_for(asyncio.shield(handle.ready), reg.settings.launch_timeout)
        else:
            handle.ready.set_result(None)
            await handle.attach()
        handle.status = rec.status
        handle.start_commands()
        reg.metrics.recoveries.labels("reattach").inc()
        self.log.info(
            "session re-attached", session_id=sid, fresh_runner=fresh_runner, after_seq=rec.last_seq
        )
        if rec.status in ("starting", "busy"):
            await handle.set_status("idle" if fresh_runner else rec.status)
