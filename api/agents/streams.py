"""Read a session's events from JetStream, for SSE clients and for waiting on outcomes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from broker import subjects
from broker.events import peek_event


@dataclass(slots=True)
class StreamedEvent:
    """One stored event: its stream sequence (the SSE id), type, turn and raw JSON."""

    seq: int
    type: str
    turn_id: str | None
    data: bytes


async def last_seq(js: JetStreamContext, session_id: str) -> int:
    """Sequence of the newest event of a session, 0 when it has none."""
    try:
        msg = await js.get_last_msg(subjects.EVT_STREAM, subjects.events(session_id))
    except NotFoundError:
        return 0
    return int(msg.seq or 0)


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
        if self.since is not None:
            cfg = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME,
                opt_start_time=datetime.fromtimestamp(self.since, UTC),
            )
        elif self.after_seq is None:
            cfg = ConsumerConfig(deliver_policy=DeliverPolicy.NEW)
        elif self.after_seq <= 0:
            cfg = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        else:
            cfg = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.after_seq + 1
            )
        self._sub = await self.js.subscribe(
            subjects.events(self.session_id),
            stream=subjects.EVT_STREAM,
            ordered_consumer=True,
            config=cfg,
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
            peek = peek_event(msg.data)
            yield StreamedEvent(
                seq=int(msg.metadata.sequence.stream),
                type=peek.type,
                turn_id=peek.turn_id,
                data=msg.data,
            )
