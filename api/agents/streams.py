"""Read a session's events from JetStream, for SSE clients and for waiting on outcomes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from broker import subjects
from broker.events import peek_event


@dataclass(slots=True)
class StreamedEvent:
    """One stored event: its stream sequence (the SSE id), type, turn and raw JSON.

    ``ts`` is when the stream stored it (unix seconds); ``pending`` how many of the session's
    events the consumer that read it had still to deliver at that moment.
    """

    seq: int
    type: str
    turn_id: str | None
    data: bytes
    ts: float = 0.0
    pending: int = 0
    # Its SSE frame, made once however many clients it goes to (api/agents/sse.py).
    frame: bytes = b""


def to_event(msg: Msg) -> StreamedEvent:
    """A stored event from a JetStream message (an unreadable body gets type ``unknown``)."""
    meta = msg.metadata
    try:
        head = peek_event(msg.data)
        type_, turn_id = head.type, head.turn_id
    except msgspec.DecodeError:
        # Not ours to drop: subscribers still get the bytes, in order, with their id.
        type_, turn_id = "unknown", None
    return StreamedEvent(
        seq=int(meta.sequence.stream),
        type=type_,
        turn_id=turn_id,
        data=msg.data,
        ts=meta.timestamp.timestamp(),
        pending=int(meta.num_pending),
    )


async def last_seq(js: JetStreamContext, session_id: str) -> int:
    """Sequence of the newest event of a session, 0 when it has none."""
    try:
        msg = await js.get_last_msg(subjects.EVT_STREAM, subjects.events(session_id))
    except NotFoundError:
        return 0
    return int(msg.seq or 0)


def consumer_config(after_seq: int | None, since: float | None = None) -> ConsumerConfig:
    """Where a consumer of one session's events starts.

    ``since`` (unix time) wins; else ``after_seq``: None for only new events, 0 for all of them,
    N for those after sequence N.
    """
    if since is not None:
        return ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=datetime.fromtimestamp(since, UTC),
        )
    if after_seq is None:
        return ConsumerConfig(deliver_policy=DeliverPolicy.NEW)
    if after_seq <= 0:
        return ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    return ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after_seq + 1
    )


@dataclass(slots=True)
class EventFeed:
    """An ordered consumer over one session's events; iterate it, close it when done."""

    js: JetStreamContext
    session_id: str
    after_seq: int | None = None  # None: only new events; 0: from the start
    keepalive: float | None = None
    # Unix time to start from instead (wins over ``after_seq``).
    since: float | None = None

    _sub: object | None = None

    async def open(self) -> EventFeed:
        self._sub = await self.js.subscribe(
            subjects.events(self.session_id),
            stream=subjects.EVT_STREAM,
            ordered_consumer=True,
            config=consumer_config(self.after_seq, self.since),
            inactive_threshold=60.0,
        )
        return self

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()  # type: ignore[attr-defined]
            self._sub = None

    async def events(self) -> AsyncIterator[StreamedEvent | None]:
        """Yield events; yield ``None`` every ``keepalive`` seconds of silence."""
        assert self._sub is not None, "open() first"
        sub = self._sub
        while True:
            try:
                msg = await sub.next_msg(timeout=self.keepalive or 3600.0)  # type: ignore[attr-defined]
            except (TimeoutError, NatsTimeout):
                yield None
                continue
            yield to_event(msg)
