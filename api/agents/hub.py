"""Follow each session's events once per API process and fan them out to its SSE clients.

One ordered JetStream consumer per followed session (a *topic*) reads the session's events
from its first one, keeps the newest in a cache bounded in bytes, and hands each event to every
client of that session through the client's own bounded queue. So a thousand viewers of one
session cost one consumer, not a thousand.

A client that starts after sequence A (``Last-Event-ID``; 0 for the whole history) is joined
in one step with no ``await``: it gets the cached events after A as its backlog, and every event
the topic dispatches later lands in its queue. When A is older than the cache, the missing range
is read from the stream by a short-lived consumer of the client's own (their number is bounded)
before the backlog. The three parts meet exactly because the stream sequence (the SSE ``id``) is
what everything is filtered on: a client only ever gets events after the last one it was given.

Limits: a full hub answers 503 (:class:`HubFull`); a client whose queue overflows is cut with
an ``error`` event (:class:`SlowClient`) so it can never hold up the others or grow the API's
memory; every client is told why its stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from api.agents.streams import StreamedEvent, consumer_config, last_seq, to_event
from broker import subjects
from broker.retry import retry_transient

log = structlog.get_logger("agc.api.hub")

# Most events handed to a client in one batch (one write to its socket).
MAX_BATCH = 512
# A new topic reads the session's history before its first client joins; past this many
# seconds it lets them join anyway (still exact: clients filter on sequence numbers).
CATCHUP_TIMEOUT = 30.0


class HubError(Exception):
    """Base of the hub's errors."""


class HubFull(HubError):
    """A limit of this API process is reached; the client should retry later (503)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class FeedClosed(HubError):
    """A client's stream must end: it is told with an ``error`` event carrying ``code``."""

    code = "stream_closed"


class SlowClient(FeedClosed):
    code = "slow_consumer"


class FeedUnavailable(FeedClosed):
    code = "unavailable"


class ShuttingDown(FeedClosed):
    code = "shutting_down"


@dataclass(frozen=True, slots=True)
class HubLimits:
    """How much one API process takes on; see ``ApiSettings`` for each field's meaning."""

    max_clients: int = 10_000
    max_sessions: int = 1_000
    client_queue: int = 2_000
    cache_bytes: int = 1 << 20
    cache_total_bytes: int = 256 << 20
    max_replays: int = 32
    linger: float = 10.0
    keepalive: float = 15.0
    retry_after: int = 2
    failover_timeout: float = 15.0


class EventHub:
    """Every followed session of this API process; made in the lifespan, closed at shutdown."""

    def __init__(self, js: JetStreamContext, limits: HubLimits | None = None) -> None:
        self.js = js
        self.limits = limits or HubLimits()
        self._topics: dict[str, _Topic] = {}
        self._clients = 0
        # Bytes held by all topics' caches (bounded by ``cache_total_bytes``).
        self.cached_bytes = 0
        self._replays = asyncio.Semaphore(self.limits.max_replays)
        self._closed = False
        self._closing: set[asyncio.Task[None]] = set()
        # One timer for every client's keep-alives (a timer per client wait costs more).
        self._ticker: asyncio.Task[None] | None = None

    @property
    def clients(self) -> int:
        return self._clients

    @property
    def sessions(self) -> int:
        return len(self._topics)

    async def subscribe(
        self, session_id: str, *, after: int | None, since: float | None = None
    ) -> Subscription:
        """Follow a session's events after sequence ``after`` (None: only events from now on).

        With ``since`` (unix time), start at the first event stored at or after it instead.
        Raises :class:`HubFull` when this process has no room for another client or session.
        """
        lim = self.limits
        if self._closed:
            raise HubFull("the API is shutting down", lim.retry_after)
        if self._clients >= lim.max_clients:
            raise HubFull(
                f"this API process already streams to {lim.max_clients} clients "
                "(AGC_SSE_MAX_CLIENTS)",
                lim.retry_after,
            )
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick())
        # Reserve the slot before any await, so concurrent arrivals cannot overshoot.
        self._clients += 1
        topic: _Topic | None = None
        try:
            if since is None and after is None:
                # "From now on" is the stream's newest event, whatever the topic has read yet.
                after = await self.last_seq(session_id)
            topic = await self._topic(session_id)
            return topic.join(after or 0, since)
        except BaseException:
            self._clients -= 1
            if topic is not None and not topic.subs:
                topic.linger()
            raise

    async def last_seq(self, sid: str) -> int:
        """The session's newest event, asked again through a NATS failover (no leader yet)."""
        return await retry_transient(
            lambda: last_seq(self.js, sid),
            within=self.limits.failover_timeout,
            on_retry=lambda exc: log.info(
                "JetStream retried", session_id=sid, error=type(exc).__name__
            ),
        )

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.limits.keepalive)
            for topic in list(self._topics.values()):
                for sub in list(topic.subs):
                    sub.tick()

    async def _topic(self, sid: str) -> _Topic:
        topic = self._topics.get(sid)
        if topic is None:
            if len(self._topics) >= self.limits.max_sessions:
                # A session nobody watches any more (lingering) makes room first.
                idle = next((t for t in self._topics.values() if not t.subs and t.lingering), None)
                if idle is not None:
                    self._drop(idle)
            if len(self._topics) >= self.limits.max_sessions:
                raise HubFull(
                    f"this API process already follows {self.limits.max_sessions} sessions "
                    "(AGC_SSE_MAX_SESSIONS)",
                    self.limits.retry_after,
                )
            topic = _Topic(self, sid)
            self._topics[sid] = topic
            topic.starting = asyncio.ensure_future(topic.start())
        try:
            # Shielded: one client giving up must not cancel the start the others wait on.
            await asyncio.shield(topic.starting)  # type: ignore[arg-type]
        except Exception as exc:
            if self._topics.get(sid) is topic:
                del self._topics[sid]
            raise HubFull(
                f"cannot follow the session's events right now ({type(exc).__name__})",
                self.limits.retry_after,
            ) from exc
        return topic

    def _left(self, topic: _Topic) -> None:
        self._clients -= 1
        if not topic.subs and not self._closed:
            topic.linger()

    def _drop(self, topic: _Topic) -> None:
        """Stop following a session nobody watches any more."""
        if self._topics.get(topic.sid) is topic:
            del self._topics[topic.sid]
        task = asyncio.ensure_future(topic.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """End every client's stream (they are told) and every topic's consumer."""
        self._closed = True
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        topics = list(self._topics.values())
        self._topics.clear()
        for topic in topics:
            for sub in list(topic.subs):
                sub.fail(ShuttingDown("the API is shutting down; reconnect with Last-Event-ID"))
            await topic.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


class _Topic:
    """One session followed by this process: its consumer, cache and clients."""

    def __init__(self, hub: EventHub, sid: str) -> None:
        self.hub = hub
        self.sid = sid
        self.subs: set[Subscription] = set()
        self.cache: deque[StreamedEvent] = deque()
        self.cache_bytes = 0
        # Every event after ``floor`` up to ``head`` is in the cache (0: the whole history).
        self.floor = 0
        self.head = 0
        self.starting: asyncio.Future[None] | None = None
        self._caught_up = asyncio.Event()
        self._catchup_to = 0
        self._psub: object | None = None
        self._linger: asyncio.TimerHandle | None = None
        self.log = log.bind(session_id=sid)

    async def start(self) -> None:
        """Start the consumer and read the session's history up to its newest event."""
        self._catchup_to = await self.hub.last_seq(self.sid)
        if self._catchup_to == 0:
            self._caught_up.set()
        self._psub = await retry_transient(
            lambda: self.hub.js.subscribe(
                subjects.events(self.sid),
                stream=subjects.EVT_STREAM,
                ordered_consumer=True,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
                cb=self._on_msg,
                inactive_threshold=60.0,
            ),
            # Through a NATS failover (no stream or meta leader for a moment) this times out;
            # retried, a client following meanwhile waits instead of getting a 503.
            within=self.hub.limits.failover_timeout,
            on_retry=lambda exc: self.log.info("JetStream retried", error=type(exc).__name__),
        )
        try:
            async with asyncio.timeout(CATCHUP_TIMEOUT):
                await self._caught_up.wait()
        except TimeoutError:
            self.log.warning("history not read in time; clients join anyway", head=self.head)

    async def _on_msg(self, msg: Msg) -> None:
        ev = to_event(msg)
        if ev.seq <= self.head:
            # nats-py's ordered consumer, reset before its first message, starts over.
            return
        hub = self.hub
        self.head = ev.seq
        self.cache.append(ev)
        self.cache_bytes += len(ev.data)
        hub.cached_bytes += len(ev.data)
        limit, total = hub.limits.cache_bytes, hub.limits.cache_total_bytes
        while (self.cache_bytes > limit or hub.cached_bytes > total) and len(self.cache) > 1:
            old = self.cache.popleft()
            self.cache_bytes -= len(old.data)
            hub.cached_bytes -= len(old.data)
            self.floor = old.seq
        for sub in list(self.subs):
            sub.push(ev)
        if not self._caught_up.is_set() and (ev.seq >= self._catchup_to or ev.pending == 0):
            self._caught_up.set()

    def join(self, after: int, since: float | None) -> Subscription:
        """Add a client; no ``await`` here, so no event can fall between backlog and queue."""
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        cached = self.cache
        covered = (
            self.floor == 0 or (bool(cached) and cached[0].ts <= since)
            if since is not None
            else after >= self.floor
        )
        if since is not None:
            backlog = [e for e in cached if e.ts >= since]
        else:
            backlog = [e for e in cached if e.seq > after] if cached and after < self.head else []
        sub = Subscription(
            self,
            after=after,
            replay_to=None if covered else self.floor,
            since=since,
            backlog=backlog,
        )
        self.subs.add(sub)
        return sub

    def leave(self, sub: Subscription) -> None:
        if sub in self.subs:
            self.subs.discard(sub)

    @property
    def lingering(self) -> bool:
        return self._linger is not None

    def linger(self) -> None:
        """Keep following a while after the last client left (a reconnect is likely)."""
        if self._linger is None:
            loop = asyncio.get_running_loop()
            self._linger = loop.call_later(self.hub.limits.linger, self._expire)

    def _expire(self) -> None:
        self._linger = None
        if not self.subs:
            self.hub._drop(self)

    async def close(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._psub is not None:
            with contextlib.suppress(Exception):
                await self._psub.unsubscribe()  # type: ignore[attr-defined]
            self._psub = None
        self.hub.cached_bytes -= self.cache_bytes
        self.cache_bytes = 0
        self.cache.clear()


class Subscription:
    """One client's view of a session: replay (if needed), backlog, then live events."""

    def __init__(
        self,
        topic: _Topic,
        *,
        after: int,
        replay_to: int | None,
        since: float | None,
        backlog: list[StreamedEvent],
    ) -> None:
        self.topic = topic
        self.session_id = topic.sid
        self.last = after
        self._replay_to = replay_to
        self._since = since
        self._backlog = backlog
        self._queue: deque[StreamedEvent] = deque()
        self._limit = topic.hub.limits.client_queue
        self._wake = asyncio.Event()
        # Keep-alives: set by the hub's ticker when nothing was sent since its last tick.
        self._sent = False
        self._keepalive_due = False
        self._error: FeedClosed | None = None
        self._closed = False

    # -- called by the topic (no await: dispatch is one synchronous pass) ----------------
    def push(self, ev: StreamedEvent) -> None:
        if ev.seq <= self.last:
            return  # the client started after it
        if len(self._queue) >= self._limit:
            self.fail(
                SlowClient(
                    f"this client fell more than {self._limit} events behind the session "
                    "(AGC_SSE_CLIENT_QUEUE); reconnect with Last-Event-ID to resume"
                )
            )
            return
        self._queue.append(ev)
        self._wake.set()

    def tick(self) -> None:
        if not self._sent:
            self._keepalive_due = True
            self._wake.set()
        self._sent = False

    def fail(self, error: FeedClosed) -> None:
        """End this client's stream with ``error``; stop queueing for it at once."""
        if self._error is None:
            self._error = error
            self._queue.clear()
            self.topic.leave(self)
            self._wake.set()

    # -- called by the client's response -------------------------------------------------
    async def batches(self) -> AsyncIterator[list[StreamedEvent]]:
        """Yield the client's events in order, batched; an empty batch after a silence of
        one to two ``keepalive`` periods.

        Raises :class:`FeedClosed` when the stream must end (the client is to be told).
        """
        if self._replay_to is not None:
            async for batch in self._replay(self._replay_to):
                yield batch
        backlog, self._backlog = self._backlog, []
        for i in range(0, len(backlog), MAX_BATCH):
            if out := self._take(backlog[i : i + MAX_BATCH]):
                yield out
        while True:
            if self._error is not None:
                raise self._error
            if self._queue:
                n = min(len(self._queue), MAX_BATCH)
                if out := self._take([self._queue.popleft() for _ in range(n)]):
                    self._sent = True
                    yield out
                continue
            if self._keepalive_due:
                self._keepalive_due = False
                yield []
                continue
            self._wake.clear()
            await self._wake.wait()

    async def events(self) -> AsyncIterator[StreamedEvent | None]:
        """Events one by one, ``None`` after each silence of ``keepalive`` seconds."""
        async for batch in self.batches():
            if not batch:
                yield None
            for ev in batch:
                yield ev

    def _take(self, events: list[StreamedEvent]) -> list[StreamedEvent]:
        out = [e for e in events if e.seq > self.last]
        if out:
            self.last = out[-1].seq
        return out

    async def _replay(self, upto: int) -> AsyncIterator[list[StreamedEvent]]:
        """Events from the stream after ``last`` (or since ``since``) through ``upto``."""
        hub = self.topic.hub
        async with hub._replays:
            try:
                psub = await hub.js.subscribe(
                    subjects.events(self.session_id),
                    stream=subjects.EVT_STREAM,
                    ordered_consumer=True,
                    config=consumer_config(self.last, self._since),
                    inactive_threshold=60.0,
                )
            except Exception as exc:
                self.topic.log.warning("replay consumer failed", error=str(exc))
                raise FeedUnavailable(
                    "the session's past events cannot be read right now; "
                    "reconnect with Last-Event-ID to resume"
                ) from exc
            try:
                while True:
                    try:
                        msg = await psub.next_msg(timeout=hub.limits.keepalive)
                    except (TimeoutError, NatsTimeout):
                        # Nothing stored between here and the cache (aged out): go on.
                        return
                    ev = to_event(msg)
                    if out := self._take([ev]):
                        yield out
                    if ev.seq >= upto or ev.pending == 0:
                        return
            finally:
                with contextlib.suppress(Exception):
                    await psub.unsubscribe()

    async def close(self) -> None:
        """The client is gone: free its place (idempotent)."""
        if not self._closed:
            self._closed = True
            self._queue.clear()
            self.topic.leave(self)
            self.topic.hub._left(self.topic)
