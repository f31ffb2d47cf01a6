"""A session without a container: its record in Redis and its events published to JetStream
exactly as a worker publishes them (the schema of ``broker/events.py``).

For tests and benchmarks of what the API does with a session's events (fan-out, SSE framing,
resumption) that must not depend on Docker or the SDK. ``answer_chats`` plays the owning
worker's part for chats: it consumes the chat commands the API publishes and answers each with
a scripted turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError
from redis.asyncio import Redis

from broker import subjects
from broker.commands import Chat, decode_command
from broker.events import (
    AssistantText,
    Event,
    SessionStatus,
    TextDelta,
    TurnCompleted,
    TurnStarted,
    UserMessage,
    encode_event,
)
from broker.sealing import Sealer
from broker.state import SessionRecord, SessionStore


@dataclass
class ScriptedSession:
    session_id: str
    api_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


async def create_session(
    redis_url: str, secret: str, *, status: str = "running", prefix: str = "agc"
) -> ScriptedSession:
    """Record a session (owned by a worker that does not exist) the API will serve."""
    sid = f"conv-{uuid.uuid4().hex}"
    key = f"sk-test-{secrets.token_hex(8)}"
    redis = Redis.from_url(redis_url)
    try:
        await SessionStore(redis, prefix=prefix).create(
            SessionRecord(
                session_id=sid,
                agent_id=f"agent-{uuid.uuid4().hex[:12]}",
                config_id="code-assistant",
                status=status,
                key_hash=Sealer(secret).key_hash(key),
                owner="w-scripted",
            )
        )
    finally:
        await redis.aclose()
    return ScriptedSession(sid, key)


def turn(
    sid: str, turn_id: str, *, deltas: int = 10, text: str = "hello", delta_bytes: int = 0
) -> list[Event]:
    """The events of one turn as a runner emits them: user message, deltas, text, completion.

    ``delta_bytes`` pads each delta to about that many bytes (for memory and buffer tests).
    """
    piece = "x" * delta_bytes if delta_bytes else text
    return [
        UserMessage(session_id=sid, turn_id=turn_id, text=text),
        SessionStatus(session_id=sid, status="busy"),
        TurnStarted(session_id=sid, turn_id=turn_id),
        *(TextDelta(session_id=sid, turn_id=turn_id, text=piece, index=i) for i in range(deltas)),
        AssistantText(session_id=sid, turn_id=turn_id, text=piece * (1 if delta_bytes else deltas)),
        TurnCompleted(session_id=sid, turn_id=turn_id, stop_reason="end_turn", num_turns=1),
        SessionStatus(session_id=sid, status="idle"),
    ]


async def publish(js: JetStreamContext, events: Sequence[Event]) -> list[int]:
    """Publish events in order; return their stream sequences (their SSE ids)."""
    seqs = []
    for ev in events:
        ack = await js.publish(subjects.events(ev.session_id), encode_event(ev))
        seqs.append(int(ack.seq))
    return seqs


async def stored_seqs(js: JetStreamContext, sid: str) -> list[int]:
    """Every stored event sequence of a session, oldest first (the ground truth).

    Read message by message with "next by subject" gets: no consumer, so it works even when
    the stream has as many consumers as the server allows.
    """
    out: list[int] = []
    while True:
        try:
            msg = await js.get_msg(
                subjects.EVT_STREAM,
                seq=(out[-1] if out else 0) + 1,
                subject=subjects.events(sid),
                next=True,
            )
        except NotFoundError:
            return out
        out.append(int(msg.seq or 0))


@asynccontextmanager
async def answer_chats(
    js: JetStreamContext, sid: str, *, deltas: int = 5
) -> AsyncIterator[list[Chat]]:
    """Act as the session's owner: answer every chat command with a scripted turn.

    Yields the list of chats received so far. Uses the owner's durable consumer name, so it
    reads the commands a real worker would (at most one consumer per subject on a work queue).
    """
    received: list[Chat] = []
    psub = await js.pull_subscribe(
        subjects.session_cmd_filter(sid),
        durable=subjects.session_consumer(sid),
        stream=subjects.CMD_STREAM,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT),
    )

    async def loop() -> None:
        while True:
            try:
                msgs = await psub.fetch(1, timeout=1.0)
            except TimeoutError:
                continue
            for msg in msgs:
                cmd = decode_command(msg.data)
                await msg.ack()
                if isinstance(cmd, Chat):
                    received.append(cmd)
                    await publish(js, turn(sid, cmd.turn_id, deltas=deltas, text=cmd.message))

    task = asyncio.create_task(loop())
    try:
        yield received
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):
            await psub.unsubscribe()
