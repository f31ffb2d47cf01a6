"""One session owned by this worker: its runner channel, event relay and command consumer."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import msgspec
import structlog
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from broker import subjects
from broker.commands import Approve, Chat, Interrupt, Stop, decode_command
from broker.events import (
    AnyEvent,
    ApprovalRequested,
    ApprovalResolved,
    ErrorEvent,
    Event,
    SessionReady,
    SessionStatus,
    SessionStopped,
    SystemNotice,
    TurnCompleted,
    TurnStarted,
    UnknownEvent,
    decode_event,
    encode_event,
    peek_event,
)
from broker.limits import fit_event
from broker.retry import publish_retrying
from broker.runner_wire import ApproveIn, Attach, ChatIn, Envelope, Init, InterruptIn, StopIn
from workers.approvals import ApprovalTracker
from workers.channel import RunnerChannel
from workers.errors import RunnerGone
from workers.host import Host
from workers.pull import DurablePull
from workers.rpc import RpcRouter, error_reply

log = structlog.get_logger("agc.session")

# Seconds detach waits for the session's tasks (a command fetch ends within its 1 s timeout).
DETACH_WAIT = 5.0


_HIGH_RATE = frozenset({"text.delta", "thinking.delta"})
_MAX_UNACKED = 512
# Room for the subject and headers beside an event in one NATS message.
_HEADROOM = 4096


class SessionOwner(Host, Protocol):
    """What a session needs of the worker that owns it, beyond the shared clients."""

    @property
    def rpc(self) -> RpcRouter: ...

    async def stop_session(self, handle: SessionHandle, *, reason: str) -> None:
        """Take the session apart (a ``stop`` command)."""
        ...

    async def runner_gone(self, handle: SessionHandle) -> None:
        """The runner's channel closed while nobody was stopping it."""
        ...


class SessionHandle:
    """Relays a runner's events to NATS and the session's commands to the runner."""

    def __init__(
        self,
        owner: SessionOwner,
        session_id: str,
        container_id: str,
        channel: RunnerChannel,
        *,
        last_seq: int = 0,
        boot_id: str = "",
    ) -> None:
        self.owner = owner
        self.session_id = session_id
        self.container_id = container_id
        self.channel = channel
        self.last_seq = last_seq
        self.boot_id = boot_id
        self.status = "starting"
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stopping = False
        # Set by detach: the loops end even where a cancellation is lost (see detach).
        self._detached = False
        self.stopped = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._busy_turns: set[str] = set()
        self.approvals = ApprovalTracker(owner.store, session_id)
        # Pipelined delta publishes whose JetStream acks are not collected yet.
        self._unacked: list[tuple[asyncio.Future[Any], bytes, str]] = []
        self.log = log.bind(session_id=session_id, worker_id=owner.worker_id)
        channel.on_discard = self._line_discarded

    @property
    def current_turn(self) -> str | None:
        """The turn running now, when exactly one is (events the worker makes join it)."""
        return next(iter(self._busy_turns)) if len(self._busy_turns) == 1 else None

    # -- lifecycle -----------------------------------------------------------------------
    def start_relay(self) -> None:
        """Begin relaying the runner's output to NATS."""
        self._tasks.append(asyncio.create_task(self._relay(), name=f"relay-{self.session_id}"))

    def start_commands(self) -> None:
        """Begin consuming this session's commands and answering its requests (once ready)."""
        self._tasks.append(
            asyncio.create_task(self._consume_commands(), name=f"cmds-{self.session_id}")
        )
        self._tasks.append(asyncio.create_task(self._serve_rpc(), name=f"rpc-{self.session_id}"))

    async def _serve_rpc(self) -> None:
        """Answer request/reply operations on this session (``stats``, ``files.*``)."""
        prefix = subjects.session_rpc(self.session_id, "")
        while True:
            try:
                # Core subscriptions are restored by nats-py after a reconnect; only the
                # first one can fail (NATS down right now).
                sub = await self.owner.nc.subscribe(subjects.session_rpc_filter(self.session_id))
                break
            except Exception as exc:
                self.log.warning("rpc subscription failed", error=str(exc))
                await asyncio.sleep(0.5)
        try:
            async for msg in sub.messages:
                op = msg.subject.removeprefix(prefix)
                if op == "approve":
                    # The API's direct path for an answer: relayed at once, no JetStream hop.
                    self.owner.spawn(self._approve_now(msg))
                    continue
                # Each request runs on its own so a slow archive never blocks a stats call.
                self.owner.spawn(self.owner.rpc.handle(self, op, msg))
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _approve_now(self, msg: Msg) -> None:
        """Relay an answer the API sent directly; reply once the runner has it (or why not).

        Any reply but ``ok`` (or none) makes the API queue the answer on JetStream instead.
        """
        try:
            cmd = decode_command(msg.data)
        except ValueError as exc:
            await msg.respond(error_reply(400, "bad_command", str(exc)))
            return
        if not isinstance(cmd, Approve) or cmd.session_id != self.session_id:
            await msg.respond(error_reply(400, "bad_command", "not an approve for this session"))
            return
        try:
            await self._relay_answer(cmd)
        except RunnerGone as exc:
            await msg.respond(error_reply(503, "runner_gone", str(exc)))
            return
        await msg.respond(b'{"ok":true}')

    async def _relay_answer(self, cmd: Approve) -> None:
        self.approvals.relayed(cmd)
        await self.channel.send(ApproveIn(answer=cmd.answer))

    async def init(self, init: Init) -> None:
        await self.channel.send(init)

    async def attach(self) -> None:
        """Ask a running runner to replay what this worker may not have published yet."""
        await self.channel.send(Attach(after_seq=self.last_seq))

    async def detach(self) -> None:
        """Stop relaying without touching the container (a worker restart re-attaches).

        Bounded: on Python 3.11 ``asyncio.wait_for`` can lose a cancellation that lands as its
        inner wait completes (nats-py's fetch uses it), so a cancelled loop might run on; the
        flag ends it at its next turn, and a task still running after the wait is left behind
        rather than holding up the worker's shutdown.
        """
        self._detached = True
        # Detach may be called from one of the session's own tasks (the relay, when its runner
        # is gone): that one finishes on its own.
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=DETACH_WAIT)
            if pending:
                self.log.warning("tasks still running after detach", tasks=len(pending))
        await self.channel.close()

    # -- publishing ----------------------------------------------------------------------
    async def publish_event(self, event: Event) -> None:
        """Publish an event the worker itself produces (status, errors)."""
        await self.publish_raw(encode_event(event), f"{self.session_id}:w:{uuid.uuid4().hex}")

    async def publish_raw(self, data: bytes, msg_id: str) -> None:
        """Publish to the session's subject, retrying through a NATS outage.

        The message id makes a retry of something JetStream already stored a no-op, so an
        event is never lost and never doubled. An event too large for a NATS message is cut
        down first (:func:`broker.limits.fit_event`); one NATS refuses for good is dropped,
        never retried forever.
        """
        data = fit_event(data, max(self.owner.nc.max_payload - _HEADROOM, 64 << 10))
        try:
            await publish_retrying(
                self.owner.js,
                subjects.events(self.session_id),
                data,
                msg_id,
                within=None,
                on_retry=lambda exc: self.log.warning(
                    "publish failed, retrying", error=str(exc) or type(exc).__name__
                ),
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log.error("event refused by NATS; dropped", error=str(exc), size=len(data))

    async def _publish_pipelined(self, data: bytes, msg_id: str) -> None:
        """Send a delta without waiting for its ack; :meth:`_settle` collects the acks.

        Awaiting each ack costs a round trip per delta (~0.25 ms), so a burst of deltas queued
        behind each other; pipelined they go out as fast as the socket takes them, in order.
        """
        try:
            ack = await self.owner.js.publish_async(
                subjects.events(self.session_id), data, headers={"Nats-Msg-Id": msg_id}
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            await self._settle()
            await self.publish_raw(data, msg_id)
            return
        self._unacked.append((ack, data, msg_id))
        if len(self._unacked) >= _MAX_UNACKED:
            await self._settle()

    async def _settle(self) -> None:
        """Wait for every pipelined publish; re-send (same id, so never twice) what failed."""
        pending, self._unacked = self._unacked, []
        for ack, data, msg_id in pending:
            try:
                await asyncio.wait_for(ack, 5.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                await self.publish_raw(data, msg_id)

    async def _best_effort(self, op: Awaitable[object]) -> None:
        """Run a Redis bookkeeping write; a Redis outage must not stop the event relay."""
        try:
            await op
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log.warning("state write failed", error=str(exc) or type(exc).__name__)

    async def set_status(self, status: str, detail: str = "", **fields: object) -> None:
        if status == self.status and not fields:
            return
        self.status = status
        await self._best_effort(self.owner.store.set_status(self.session_id, status, **fields))
        await self.publish_event(
            SessionStatus(session_id=self.session_id, status=status, detail=detail)  # type: ignore[arg-type]
        )

    async def _relay(self) -> None:
        try:
            async for env in self.channel.envelopes():
                await self._publish_envelope(env)
            await self._settle()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the relay must never die silently
            self.log.exception("relay failed", error=str(exc))
        if not self.ready.done():
            self.ready.set_exception(RunnerGone(self.channel.stderr_tail() or "runner exited"))
        if not self.stopping:
            await self.owner.runner_gone(self)

    async def _publish_envelope(self, env: Envelope) -> None:
        if env.boot_id != self.boot_id:
            # A new runner process: its sequence starts again.
            self.boot_id = env.boot_id
            self.last_seq = 0
        if env.seq <= self.last_seq:
            return  # replayed and already published
        data = bytes(env.event)
        try:
            peek = peek_event(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self._reject(env, "an event that is not valid JSON")
            return
        if peek.session_id not in ("", self.session_id):
            # Never published under this session's subject (nor any other).
            self._reject(env, f"an event of another session ({peek.session_id[:60]!r})")
            return
        msg_id = f"{self.session_id}:{env.boot_id}:{env.seq}"
        if peek.type in _HIGH_RATE:
            # The hot path routes on the head alone; nothing here reads a delta's fields.
            self.owner.metrics.events.inc()
            await self._publish_pipelined(data, msg_id)
            self.last_seq = env.seq
            return
        try:
            event = decode_event(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            # A known type with the wrong fields: nothing downstream could read it either.
            self._reject(env, f"a malformed {peek.type[:60]!r} event")
            return
        if isinstance(event, TurnCompleted):
            data = self._stamp(data)
        if isinstance(event, SessionStopped) and self.stopping:
            # The worker publishes the definitive one once the container is gone.
            self.last_seq = env.seq
            self.stopped.set()
            return
        self.owner.metrics.events.inc()
        if isinstance(event, ApprovalRequested | ApprovalResolved):
            # Recorded before anyone can see it: an answer sent the moment a request arrives
            # finds it pending, and a list read once it is resolved shows it gone (and a
            # session-scoped allow among the grants).
            await self._track_approvals(event, data)
        # Everything published before this event is stored before it is: its position in
        # the stream (and so its SSE id) can never precede an earlier delta's.
        await self._settle()
        await self.publish_raw(data, msg_id)
        self.last_seq = env.seq
        # Only here, not per delta: after a worker restart a delta's replay is dropped by
        # JetStream's duplicate window (the Nats-Msg-Id is stable), not by this mark.
        await self._best_effort(self.owner.store.advance_seq(self.session_id, env.boot_id, env.seq))
        await self._observe(event, data)

    def _stamp(self, data: bytes) -> bytes:
        """Put the turn's usage and cost as the gateway counted them into its turn.completed.

        Whatever the runner wrote there is replaced: it comes from inside the sandbox.
        """
        usage, cost = self.owner.sandbox.take_turn_usage(self.session_id)
        try:
            event = msgspec.json.decode(data)
        except msgspec.DecodeError:
            return data
        if not isinstance(event, dict):
            return data
        event["usage"] = msgspec.structs.asdict(usage)
        event["cost_usd"] = cost
        return msgspec.json.encode(event)

    def _reject(self, env: Envelope, what: str) -> None:
        self.last_seq = env.seq
        self.log.warning("runner sent a rejected event", what=what, seq=env.seq)
        error = ErrorEvent(
            session_id=self.session_id,
            code="rejected_event",
            message=f"the runner sent {what}; it was not published",
        )
        self.owner.spawn(self.publish_event(error))

    def _line_discarded(self, size: int) -> None:
        error = ErrorEvent(
            session_id=self.session_id,
            turn_id=self.current_turn,
            code="runner_line_too_long",
            message=f"the runner wrote a {size}-byte line, over the "
            f"{self.channel.max_line}-byte limit; it was discarded",
        )
        self.owner.spawn(self.publish_event(error))

    async def _observe(self, event: AnyEvent | UnknownEvent, data: bytes) -> None:
        """Track status and usage from the events that matter for them."""
        match event:
            case SessionReady():
                if not self.ready.done():
                    self.ready.set_result(None)
                await self._best_effort(self.approvals.observe(event, data))
            case TurnStarted():
                if event.turn_id:
                    self._busy_turns.add(event.turn_id)
                await self.set_status("busy")
            case TurnCompleted():
                self._busy_turns.discard(event.turn_id)
                # Usage and cost were recorded by the gateway as the model reported them; only
                # the SDK's session id is the runner's to tell.
                await self._best_effort(self.owner.store.count_turn(self.session_id))
                if event.sdk_session_id:
                    await self._best_effort(
                        self.owner.store.update(
                            self.session_id, sdk_session_id=event.sdk_session_id
                        )
                    )
                if not self._busy_turns and not self.stopping:
                    await self.set_status("idle")
            case ErrorEvent():
                if event.fatal and not self.ready.done():
                    reason = f"{event.message}\n{event.detail}".strip()
                    self.ready.set_exception(RunnerGone(reason))
            case SessionStopped():
                self.stopped.set()
            case SystemNotice():
                await self._track_approvals(event, data)

    async def _track_approvals(self, event: AnyEvent | UnknownEvent, data: bytes) -> None:
        was_waiting = bool(self.approvals.waiting)
        await self._best_effort(self.approvals.observe(event, data))
        if was_waiting != bool(self.approvals.waiting) and not self.stopping:
            # A resolved request's turn goes on: its tool is about to run.
            await self.set_status("waiting" if self.approvals.waiting else "busy")

    # -- commands ------------------------------------------------------------------------
    async def _consume_commands(self) -> None:
        cfg = ConsumerConfig(
            durable_name=subjects.session_consumer(self.session_id),
            filter_subject=subjects.session_cmd_filter(self.session_id),
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30.0,
            max_deliver=self.owner.settings.max_deliveries,
            inactive_threshold=self.owner.settings.session_idle_timeout * 2 + 3600.0,
        )
        pull = DurablePull(self.owner.js, cfg)
        try:
            while not (self.stopping or self._detached):
                for msg in await pull.fetch(batch=8, timeout=1.0):
                    await self._handle_command(
                        msg.data, msg.ack, msg.term, msg.nak, msg.metadata.num_delivered
                    )
        finally:
            await pull.close()

    async def _handle_command(
        self,
        data: bytes,
        ack: Callable[[], Awaitable[None]],
        term: Callable[[], Awaitable[None]],
        nak: Callable[..., Awaitable[None]],
        deliveries: int,
    ) -> None:
        try:
            cmd = decode_command(data)
        except ValueError as exc:
            await term()
            await self.publish_event(
                ErrorEvent(session_id=self.session_id, code="bad_command", message=str(exc))
            )
            return
        self.owner.metrics.commands.labels(type(cmd).__name__.lower()).inc()
        try:
            match cmd:
                case Chat(turn_id=turn_id, message=message):
                    await self.channel.send(ChatIn(turn_id=turn_id, message=message))
                    await self._best_effort(self.owner.store.touch(self.session_id))
                case Interrupt():
                    await self.channel.send(InterruptIn())
                case Approve():
                    await self._relay_answer(cmd)
                case Stop(reason=reason):
                    await ack()
                    # Stopping cancels this very task, so it runs on its own.
                    self.owner.spawn(self.owner.stop_session(self, reason=reason))
                    return
                case _:
                    await term()
                    return
        except RunnerGone as exc:
            if deliveries >= self.owner.settings.max_deliveries:
                await term()
                await self.publish_event(
                    ErrorEvent(
                        session_id=self.session_id,
                        code="command_failed",
                        message=f"gave up on a {type(cmd).__name__.lower()} command "
                        f"after {deliveries} deliveries",
                        detail=str(exc),
                        turn_id=getattr(cmd, "turn_id", None),
                    )
                )
            else:
                await nak(delay=1.0)
            return
        await ack()

    # -- stopping ------------------------------------------------------------------------
    async def stop_runner(self, reason: str, grace: float = 5.0) -> None:
        """Ask the runner to stop and wait (bounded) for its ``session.stopped``."""
        self.stopping = True
        with contextlib.suppress(RunnerGone):
            await self.channel.send(StopIn(reason=reason))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopped.wait(), grace)
