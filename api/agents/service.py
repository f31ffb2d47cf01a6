"""What the agent routes do: launch, chat, stop, resource use — over NATS, never Docker."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import structlog

from api.agents.hub import HubFull, Subscription
from api.agents.schemas import LaunchRequest
from api.agents.streams import StreamedEvent
from api.agents.turns import Decoded, TurnFold, as_event
from api.errors import (
    BadGateway,
    BadRequest,
    Conflict,
    GatewayTimeout,
    Unavailable,
)
from api.limits import check_ceilings
from api.services import Services
from api.settings import ApiSettings
from broker import subjects
from broker.commands import Chat, Interrupt, Launch, Stop, encode_command
from broker.events import ErrorEvent, SessionReady, SessionStopped
from broker.pool import PoolStore, pool_key
from broker.retry import publish_retrying
from broker.state import LAUNCH_CANCELLED, TERMINAL_STATUSES, SessionRecord
from broker.streams import StreamSettings
from configs.model import AgentConfig, is_core_env_var
from configs.store import parse_config

log = structlog.get_logger("agc.api.agents")

MAX_MESSAGE_CHARS = 200_000
DUPLICATE_WINDOW = StreamSettings().duplicate_window


async def resolve_config(services: Services, req: LaunchRequest) -> AgentConfig:
    """The config a launch asks for: a stored one by id, or an inline one (validated)."""
    if (req.config_id is None) == (req.config is None):
        raise BadRequest("give exactly one of `config_id` or `config`")
    if req.config is not None:
        return parse_config(req.config)
    return await asyncio.to_thread(services.configs.get, str(req.config_id))


def with_container_defaults(config: AgentConfig, s: ApiSettings) -> AgentConfig:
    """Fill the limits a config leaves unset from ``CONTAINER_*`` (as the original AgCluster)."""
    return config.with_default_limits(
        cpu_quota=s.container_cpu_quota,
        memory_limit=s.container_memory_limit,
        storage_limit=s.container_storage_limit,
    )


def check_mcp_env(config: AgentConfig, mcp_env: dict[str, dict[str, str]]) -> None:
    """Launch-time MCP credentials may only fill variables the config's server declares."""
    for server, values in mcp_env.items():
        if server not in config.mcp_servers:
            raise BadRequest(
                f"mcp_env names server {server!r}, which config {config.id!r} does not declare",
                field=f"mcp_env.{server}",
            )
        declared = config.declared_mcp_env(server)
        for key in values:
            if is_core_env_var(key):
                raise BadRequest(
                    f"mcp_env.{server}.{key} would override a core variable",
                    field=f"mcp_env.{server}.{key}",
                )
            if key not in declared:
                raise BadRequest(
                    f"mcp_env.{server}.{key} is not declared in the server's `env` "
                    f"(declared: {sorted(declared) or 'none'})",
                    field=f"mcp_env.{server}.{key}",
                )


async def launch(services: Services, req: LaunchRequest) -> dict[str, Any]:
    """Publish a launch and wait until the runner is ready (or the launch fails)."""
    if not req.api_key.strip():
        raise BadRequest("`api_key` must not be empty")
    config = check_ceilings(
        with_container_defaults(await resolve_config(services, req), services.settings),
        services.ceilings,
    )
    mcp_env = req.mcp_env or {}
    check_mcp_env(config, mcp_env)
    if not await services.store.live_workers():
        raise Unavailable("no worker is running: start one with `agcluster worker`")

    started = time.perf_counter()
    wire = config.to_wire()
    sealer = services.sealer
    key_hash = sealer.key_hash(req.api_key)
    sid = f"conv-{uuid.uuid4().hex}"
    # 429 over a session or rate limit, 503 when every worker is full: answered now, never
    # after waiting in the queue (api/limits.py).
    await services.admission.admit(sid, key_hash)
    try:
        # A warm slot of this very config, if a worker keeps one (workers/pool.py): the
        # session takes the slot's pre-minted id, and the worker that launches it finds it.
        slot = await PoolStore(services.redis, prefix=services.settings.redis_prefix).claim(
            pool_key(wire)
        )
        if slot:
            await services.admission.rename(sid, slot, key_hash)
            sid = slot
    except BaseException:
        await services.admission.release(sid, key_hash)
        raise
    agent_id = f"agent-{uuid.uuid4().hex[:12]}"
    record = SessionRecord(
        session_id=sid,
        agent_id=agent_id,
        config_id=config.id,
        config_name=config.name,
        key_hash=key_hash,
        sealed_api_key=sealer.seal(req.api_key, context=sid),
        sealed_mcp_env=(
            sealer.seal(msgspec.json.encode(mcp_env).decode(), context=sid) if mcp_env else ""
        ),
        limits=dict(wire.get("resource_limits") or {}),
    )
    await services.store.create(record)
    await services.store.save_config(sid, msgspec.json.encode(wire))
    command = Launch(
        session_id=sid,
        agent_id=agent_id,
        config_id=config.id,
        config=wire,
        sealed_api_key=record.sealed_api_key,
        sealed_mcp_env=record.sealed_mcp_env or None,
    )
    try:
        out = await _publish_and_await(
            services,
            sid,
            subjects.LAUNCH,
            encode_command(command),
            msg_id=sid,
            timeout=services.settings.launch_timeout,
            done=lambda e: isinstance(e, SessionReady) or (isinstance(e, ErrorEvent) and e.fatal),
        )
    except BaseException:
        await _cancel_launch(services, sid, "it could not be sent")
        raise
    if out is None:
        # Answered with an error, so it must never start later: a worker that has not taken
        # the command yet skips it, one that is starting it removes the sandbox it made.
        await _cancel_launch(
            services,
            sid,
            f"not ready within {services.settings.launch_timeout:.0f} s",
        )
        raise GatewayTimeout(
            f"the session did not become ready within "
            f"{services.settings.launch_timeout:.0f} s; the launch was cancelled",
            session_id=sid,
        )
    if isinstance(out, ErrorEvent):
        raise BadGateway(
            f"the agent failed to start: {out.message}",
            reason=out.detail[-4000:],
            error_code=out.code,
            session_id=sid,
        )
    launched = await services.store.get(sid)
    launch_ms = round((time.perf_counter() - started) * 1000)
    warm = launched is not None and launched.launch == "warm"
    log.info("launched", session_id=sid, config_id=config.id, launch_ms=launch_ms, warm=warm)
    return {
        "session_id": sid,
        "agent_id": agent_id,
        "config_id": config.id,
        "status": "running",
        # From this request to the runner's session.ready, and whether a warm slot served it.
        "launch_ms": launch_ms,
        "warm": warm,
    }


async def _cancel_launch(services: Services, sid: str, why: str) -> None:
    """Mark a launch the client was told failed as failed, so no worker ever runs it."""
    with contextlib.suppress(Exception):
        await services.store.set_status(sid, "failed", error=f"{LAUNCH_CANCELLED}: {why}")


async def _publish_and_await(
    services: Services,
    sid: str,
    subject: str,
    payload: bytes,
    *,
    msg_id: str,
    timeout: float,
    done: Callable[[Decoded], bool],
) -> Decoded | None:
    """Publish a command, then return the session's first event that ``done`` accepts.

    The subscription is made before the publish so the outcome cannot slip past; None when
    ``timeout`` seconds pass first.
    """
    sub = await services.nc.subscribe(subjects.events(sid))
    try:
        await publish_command(services, subject, payload, msg_id)
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                msg = await sub.next_msg(timeout=remaining)
            except TimeoutError:
                return None
            out = as_event(msg.data)
            if done(out):
                return out
        return None
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def publish_command(services: Services, subject: str, payload: bytes, msg_id: str) -> None:
    """Publish a command, riding through a NATS failover (a node restarting, a new leader).

    Bounded by ``AGC_FAILOVER_TIMEOUT``; past it the error becomes a 503 (see
    ``api/errors.py``) and the client may retry: the message id makes the retry the same
    command.
    """
    await publish_retrying(
        services.js,
        subject,
        payload,
        msg_id,
        within=services.settings.failover_timeout,
        on_retry=lambda exc: log.info(
            "command publish retried", subject=subject, error=type(exc).__name__
        ),
    )


def ensure_live(record: SessionRecord) -> None:
    if record.status in TERMINAL_STATUSES or record.status == "stopping":
        raise Conflict(
            f"session {record.session_id} is {record.status}", session_status=record.status
        )


def check_message(message: str) -> str:
    if not message.strip():
        raise BadRequest("`message` must not be empty")
    if len(message) > MAX_MESSAGE_CHARS:
        raise BadRequest(f"`message` is longer than {MAX_MESSAGE_CHARS} characters")
    return message


IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


async def follow(
    services: Services, session_id: str, *, after: int | None, since: float | None = None
) -> Subscription:
    """This process's shared feed of a session's events (see ``api/agents/hub.py``).

    ``after``: a stream sequence (0 for the whole history, None for only what comes next);
    ``since`` (unix time) wins over it. 503 with ``Retry-After`` when a limit is reached.
    """
    try:
        return await services.hub.subscribe(session_id, after=after, since=since)
    except HubFull as exc:
        raise Unavailable(str(exc), headers={"Retry-After": str(exc.retry_after)}) from exc


async def send_chat(
    services: Services, record: SessionRecord, message: str, idempotency_key: str | None = None
) -> tuple[Subscription, str]:
    """Publish a chat; return its turn id and a feed, opened before the publish, of what follows.

    With an ``Idempotency-Key``, a retried request (same key, within JetStream's duplicate
    window) is the same turn: the command is dropped as a duplicate and the feed starts far
    enough back to show the original turn's events.
    """
    since: float | None = None
    if idempotency_key is None:
        turn_id = f"turn-{uuid.uuid4().hex[:16]}"
    else:
        if not IDEMPOTENCY_KEY_RE.fullmatch(idempotency_key):
            raise BadRequest("Idempotency-Key must be 1-128 characters of A-Z a-z 0-9 . _ : -")
        digest = hashlib.sha256(f"{record.session_id}\0{idempotency_key}".encode()).hexdigest()
        turn_id = f"turn-{digest[:16]}"
        since = time.time() - DUPLICATE_WINDOW
    feed = await follow(services, record.session_id, after=None, since=since)
    try:
        await publish_command(
            services,
            subjects.session_cmd(record.session_id, "chat"),
            encode_command(Chat(session_id=record.session_id, turn_id=turn_id, message=message)),
            turn_id,
        )
    except Exception:
        await feed.close()
        raise
    return feed, turn_id


async def turn_events(feed: Subscription, turn_id: str) -> AsyncIterator[StreamedEvent | None]:
    """The events of one turn, ending with its ``turn.completed`` (or the session's end)."""
    async for ev in feed.events():
        if ev is None:
            yield None
            continue
        if ev.turn_id not in (turn_id, None):
            continue
        if ev.turn_id is None and ev.type not in ("error", "session.stopped", "session.status"):
            continue
        yield ev
        if (ev.type == "turn.completed" and ev.turn_id == turn_id) or ev.type == "session.stopped":
            return


async def collect_turn(feed: Subscription, turn_id: str, timeout: float) -> dict[str, Any]:
    """Run a turn to its end and summarise it for a JSON client."""
    turn = TurnFold(turn_id)

    async def _run() -> None:
        async for ev in turn_events(feed, turn_id):
            if ev is not None:
                turn.add(as_event(ev.data))

    try:
        await asyncio.wait_for(_run(), timeout)
    except TimeoutError as exc:
        raise GatewayTimeout(
            f"the turn did not finish within {timeout:.0f} s", turn_id=turn_id
        ) from exc
    finally:
        await feed.close()
    done = turn.completed
    return {
        "session_id": feed.session_id,
        "turn_id": turn_id,
        "text": turn.text,
        "tool_calls": list(turn.tools.values()),
        "usage": turn.usage,
        "cost_usd": done.cost_usd if done else None,
        "duration_ms": done.duration_ms if done else None,
        "num_turns": done.num_turns if done else None,
        "stop_reason": done.stop_reason if done else None,
        "is_error": done is None or done.is_error or bool(turn.errors),
        "interrupted": bool(done and done.interrupted),
        "errors": [{"code": e.code, "message": e.message, "detail": e.detail} for e in turn.errors],
    }


async def interrupt(services: Services, record: SessionRecord) -> None:
    await publish_command(
        services,
        subjects.session_cmd(record.session_id, "interrupt"),
        encode_command(Interrupt(session_id=record.session_id)),
        f"{record.session_id}:interrupt:{uuid.uuid4().hex}",
    )


async def stop(services: Services, record: SessionRecord) -> dict[str, Any]:
    """Ask the owner to stop the session and wait (bounded) until it has."""
    sid = record.session_id
    if record.status in TERMINAL_STATUSES:
        return {"session_id": sid, "status": record.status}
    owner_alive = bool(record.owner) and await services.store.is_alive(record.owner)
    await _publish_and_await(
        services,
        sid,
        subjects.session_cmd(sid, "stop"),
        encode_command(Stop(session_id=sid, reason="deleted")),
        msg_id=f"{sid}:stop",
        # Nobody alive to stop it: don't wait, record the stop below.
        timeout=services.settings.stop_timeout if owner_alive else 0.0,
        done=lambda e: isinstance(e, SessionStopped),
    )
    after = await services.store.get(sid)
    if after is not None and after.status not in TERMINAL_STATUSES:
        # Nobody alive owns it: record the stop; a worker's reconciliation removes the
        # container when it sees a stopped session's labels.
        await services.store.set_status(sid, "stopped")
    return {"session_id": sid, "status": "stopped"}


async def resources(services: Services, record: SessionRecord) -> dict[str, Any] | None:
    """Live CPU and memory of the session's container, asked of its owner (None if unknown)."""
    if record.status in TERMINAL_STATUSES or not record.owner:
        return None
    try:
        reply = await services.nc.request(
            subjects.session_rpc(record.session_id, "stats"), b"{}", timeout=2.0
        )
    except Exception:
        return None
    data = msgspec.json.decode(reply.data)
    return data if isinstance(data, dict) and "error" not in data else None
