"""Steps shared by launching and resuming a session: credentials, the runner's init, failure."""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import structlog
from nats.aio.msg import Msg

from broker import subjects
from broker.events import ErrorEvent, SessionStopped, encode_event
from broker.runner_wire import Init
from broker.sealing import Sealer
from broker.state import TERMINAL_STATUSES
from configs.model import AgentConfig
from workers.host import Host
from workers.sandbox.service import Bound
from workers.settings import WorkerSettings

log = structlog.get_logger("agc.worker")


def unseal(
    sealer: Sealer, sid: str, sealed_key: str, sealed_mcp_env: str | None
) -> tuple[str, dict[str, dict[str, str]]]:
    """The session's API key and MCP credentials; raises SealError on a key mismatch."""
    mcp_env: dict[str, dict[str, str]] = (
        msgspec.json.decode(sealer.open(sealed_mcp_env, context=sid)) if sealed_mcp_env else {}
    )
    return sealer.open(sealed_key, context=sid), mcp_env


async def bind_sandbox(
    host: Host, sid: str, sandbox: str, api_key: str, config: AgentConfig
) -> Bound:
    """Bind ``sandbox`` to the session with a fresh token; keep the token's hash in its record.

    The record's hash lets a worker that adopts the session (its runner still holding the
    token) bind the sandbox again; the token itself is never stored.
    """
    bound = host.sandbox.bind(sandbox, sid, api_key, config)
    await host.store.update(sid, sandbox=sandbox, gateway_token_sha256=bound.token_sha256)
    return bound


def init_message(
    settings: WorkerSettings,
    sid: str,
    bound: Bound,
    mcp_env: dict[str, dict[str, str]],
    resume: str | None,
    session_grants: list[str] | None = None,
) -> Init:
    """The first line a fresh runner reads: no model key, only the sandbox's token."""
    return Init(
        session_grants=session_grants or [],
        session_id=sid,
        config=bound.config,
        gateway_token=bound.token,
        mcp_env=mcp_env,
        resume=resume,
        worker_id=settings.worker_id,
        approval_timeout=settings.approval_timeout,
    )


async def fail_session(host: Host, sid: str, code: str, message: str, detail: str) -> None:
    """Record a session as failed and publish its last two events (error, stopped)."""
    rec = await host.store.get(sid)
    if rec is not None and rec.status in TERMINAL_STATUSES:
        return  # already over (e.g. deleted meanwhile): its last event is out
    log.warning(
        "session failed", session_id=sid, worker_id=host.worker_id, code=code, message=message
    )
    await host.store.set_status(sid, "failed", error=message)
    if rec is not None and rec.sandbox:
        # Its token stops working; the directory goes with the container.
        host.sandbox.unbind(rec.sandbox, sid)
        await host.sandbox.remove(rec.sandbox)
    for event in (
        ErrorEvent(session_id=sid, code=code, message=message, detail=detail, fatal=True),
        SessionStopped(session_id=sid, reason="failed"),
    ):
        await host.js.publish(subjects.events(sid), encode_event(event))


async def keep_in_progress(msg: Msg, every: float = 10.0) -> None:
    """Tell JetStream a long launch is still being worked on, so it is not redelivered."""
    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(Exception):
            await msg.in_progress()
