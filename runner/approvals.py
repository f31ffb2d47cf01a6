"""A person in the loop: the SDK's ``can_use_tool`` callback, answered over the platform.

Claude Code matches the config's ``permissions`` rules itself (passed as its settings) and
calls ``can_use_tool`` only for a call it would have to ask about: one an ask rule matches, or
one nothing allows. The gate emits ``approval.requested`` for it and waits for the worker to
hand in an :class:`~broker.runner_wire.ApprovalAnswer` (or for the timeout, an interrupt or the
session's end), then emits ``approval.resolved`` and gives the CLI its answer. The runner, not
the worker, is the one waiting, so a request survives its worker: an adopting worker re-attaches
and the answer it relays is applied here.

An answer can reach the runner twice (the API's direct request to the worker timed out after
the worker had relayed it, and the API then queued it on JetStream): the second copy carries
the same ``answer_id`` and is dropped without a word. Tools allowed "for this session" start
from :attr:`~broker.runner_wire.Init.session_grants`, which the worker reads from the
platform's record, so a runner restarted after a crash does not ask about them again.

Why a call needs asking is in the CLI's request (``decision_reason_type: "rule"`` for an ask
rule), which the SDK (pinned 0.2.184) does not pass to the callback; :func:`tap_requests` reads
it from the client's query object, as :mod:`runner.frames` reads raw frames. Without it every
call the CLI asks about is treated as matching a rule, so nothing is silently refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from claude_agent_sdk import ClaudeSDKClient, PermissionResultAllow, PermissionResultDeny
from claude_agent_sdk.types import PermissionResult, ToolPermissionContext

from broker.events import ApprovalRequested, ApprovalResolved, ErrorEvent, Event, ToolStarted
from broker.runner_wire import ApprovalAnswer

log = logging.getLogger("runner.approvals")

# How long the callback waits for the reader to see the call's tool_use block (it arrives on
# the same CLI stdout just before the permission request, but is routed by another task).
_SEEN_WAIT = 2.0
_REMEMBER = 1024


@dataclass
class _Pending:
    request: ApprovalRequested
    # The resolution, and what the model is told when it is a denial.
    answer: asyncio.Future[tuple[ApprovalResolved, str]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class ApprovalGate:
    """Pending requests of one session, the tools allowed for its rest, and the callback."""

    def __init__(
        self,
        session_id: str,
        emit: Callable[[Event], object],
        *,
        timeout: float,
        ask_unlisted: bool,
        current_turn: Callable[[], str | None],
    ) -> None:
        self.session_id = session_id
        self._emit = emit
        self._timeout = timeout
        self._ask_unlisted = ask_unlisted
        self._current_turn = current_turn
        self._pending: dict[str, _Pending] = {}
        self._session_allowed: set[str] = set()
        # answer ids already applied (a relayed answer may arrive a second time).
        self._applied: OrderedDict[str, None] = OrderedDict()
        # tool_use_id -> (turn_id, parent_tool_use_id) of calls the reader has seen.
        self._seen: OrderedDict[str, tuple[str | None, str | None]] = OrderedDict()
        self._seen_waiters: dict[str, asyncio.Future[None]] = {}
        # tool_use_id -> the CLI's permission request as it sent it (see tap_requests).
        self._raw: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def set_timeout(self, timeout: float) -> None:
        """The session's timeout, once a pre-started runner is bound to its session."""
        self._timeout = timeout

    def grant(self, tools: list[str]) -> None:
        """Allow ``tools`` for the rest of the session without asking (the worker's record)."""
        self._session_allowed.update(t for t in tools if t)

    # ------------------------------------------------------------------ feeding
    def tool_seen(self, event: ToolStarted) -> None:
        """Record a call's turn and sub-agent (the session calls this for each tool.started)."""
        self._seen[event.tool_use_id] = (event.turn_id, event.parent_tool_use_id)
        while len(self._seen) > _REMEMBER:
            self._seen.popitem(last=False)
        waiter = self._seen_waiters.pop(event.tool_use_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def note_request(self, request: dict[str, Any]) -> None:
        """Keep the CLI's raw permission request for the callback that follows it."""
        tool_use_id = request.get("tool_use_id")
        if isinstance(tool_use_id, str):
            self._raw[tool_use_id] = request
            while len(self._raw) > _REMEMBER:
                self._raw.popitem(last=False)

    # ------------------------------------------------------------------ the callback
    async def can_use_tool(
        self, tool: str, tool_input: dict[str, Any], ctx: ToolPermissionContext
    ) -> PermissionResult:
        """Decide one call the CLI asks about: refuse it, allow it, or put it to a person."""
        tool_use_id = ctx.tool_use_id or ""
        raw = self._raw.pop(tool_use_id, None)
        kind, reason = _why(raw, ctx)
        if kind != "rule" and not self._ask_unlisted:
            return PermissionResultDeny(
                message=f"{tool} is not allowed by this agent's configuration ({reason})."
            )
        if tool in self._session_allowed:
            return PermissionResultAllow()
        turn_id, parent = await self._placement(tool_use_id)
        now = time.time()
        request = ApprovalRequested(
            session_id=self.session_id,
            turn_id=turn_id,
            request_id=f"apr-{uuid.uuid4().hex[:16]}",
            tool_use_id=tool_use_id,
            tool=tool,
            input=dict(tool_input),
            parent_tool_use_id=parent,
            agent_id=ctx.agent_id,
            reason=reason,
            reason_kind=kind,
            description=ctx.title or ctx.description or "",
            ts=now,
            expires_at=now + self._timeout,
        )
        pending = _Pending(request)
        self._pending[request.request_id] = pending
        self._emit(request)
        try:
            resolved, told = await asyncio.wait_for(asyncio.shield(pending.answer), self._timeout)
        except TimeoutError:
            resolved, told = self._resolve(
                pending,
                "deny",
                cause="timeout",
                message=f"No one approved this {tool} call within {self._timeout:g} s, "
                "so it was not run.",
            )
        except asyncio.CancelledError:
            # The CLI abandoned the request (control_cancel_request), e.g. on an interrupt.
            if not pending.answer.done():
                self._resolve(pending, "deny", cause="cancelled", message="cancelled")
            raise
        finally:
            self._pending.pop(request.request_id, None)
        if resolved.decision == "allow":
            if resolved.scope == "session":
                self._session_allowed.add(tool)
            return PermissionResultAllow(updated_input=resolved.updated_input)
        return PermissionResultDeny(message=told)

    async def _placement(self, tool_use_id: str) -> tuple[str | None, str | None]:
        if tool_use_id and tool_use_id not in self._seen:
            waiter = self._seen_waiters.setdefault(
                tool_use_id, asyncio.get_running_loop().create_future()
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(waiter), _SEEN_WAIT)
            self._seen_waiters.pop(tool_use_id, None)
        turn_id, parent = self._seen.get(tool_use_id, (None, None))
        return turn_id or self._current_turn(), parent

    # ------------------------------------------------------------------ answers
    def answer(self, answer: ApprovalAnswer) -> None:
        """Apply a person's answer; a request no longer pending gets an error event instead."""
        if answer.answer_id:
            if answer.answer_id in self._applied:
                log.info("answer %s arrived again; already applied", answer.answer_id)
                return
            self._applied[answer.answer_id] = None
            while len(self._applied) > _REMEMBER:
                self._applied.popitem(last=False)
        pending = self._pending.get(answer.request_id)
        if pending is None or pending.answer.done():
            self._emit(
                ErrorEvent(
                    session_id=self.session_id,
                    code="approval_not_pending",
                    message=f"approval {answer.request_id} is not pending (answered, timed "
                    "out or cancelled before this answer arrived)",
                    detail=answer.request_id,
                )
            )
            return
        allow = answer.decision == "allow"
        self._resolve(
            pending,
            "allow" if allow else "deny",
            cause="answer",
            message=answer.message if not allow else "",
            scope=answer.scope if answer.scope in ("once", "session") else "once",
            updated_input=answer.updated_input if allow else None,
            by=answer.by,
            by_name=answer.by_name,
            answer_id=answer.answer_id,
            told=answer.message or "A person denied this tool call.",
        )

    def cancel_all(self, cause: str) -> None:
        """Deny every pending request (the turn was interrupted, the session is stopping)."""
        for pending in list(self._pending.values()):
            if not pending.answer.done():
                self._resolve(
                    pending, "deny", cause=cause, message=f"The user {_PAST.get(cause, cause)}."
                )

    def pending(self) -> list[dict[str, Any]]:
        """The requests still waiting, as event dicts (for a re-attaching worker)."""
        return [msgspec.to_builtins(p.request) for p in self._pending.values()]

    def _resolve(
        self,
        pending: _Pending,
        decision: str,
        *,
        cause: str,
        message: str,
        scope: str = "once",
        updated_input: dict[str, Any] | None = None,
        by: str = "",
        by_name: str = "",
        answer_id: str = "",
        told: str | None = None,
    ) -> tuple[ApprovalResolved, str]:
        req = pending.request
        resolved = ApprovalResolved(
            session_id=self.session_id,
            turn_id=req.turn_id,
            request_id=req.request_id,
            tool_use_id=req.tool_use_id,
            tool=req.tool,
            decision="allow" if decision == "allow" else "deny",
            scope="session" if scope == "session" else "once",
            message=message,
            updated_input=updated_input,
            cause=cause,
            by=by,
            by_name=by_name,
            answer_id=answer_id,
        )
        # Emitted before the CLI hears the answer: the record precedes the tool's own events.
        self._emit(resolved)
        outcome = (resolved, message if told is None else told)
        if not pending.answer.done():
            pending.answer.set_result(outcome)
        return outcome


_PAST = {"interrupted": "interrupted the turn", "stopped": "stopped the session"}


def _why(raw: dict[str, Any] | None, ctx: ToolPermissionContext) -> tuple[str, str]:
    """``(kind, reason)``: ``rule`` (an ask rule matched), ``path`` or ``unlisted``."""
    if raw is None:
        return "rule", ctx.decision_reason or "Claude Code asks before this call"
    if raw.get("decision_reason_type") == "rule":
        return "rule", "an ask rule in the agent's permissions matches this call"
    if ctx.blocked_path or "outside" in (ctx.decision_reason or ""):
        return "path", ctx.decision_reason or f"it touches {ctx.blocked_path}"
    return "unlisted", ctx.decision_reason or "no allow rule or permission mode covers this call"


def tap_requests(client: ClaudeSDKClient, note: Callable[[dict[str, Any]], None]) -> bool:
    """Show every ``can_use_tool`` request of ``client``'s CLI to ``note`` before it is handled.

    Returns False (and changes nothing) if the SDK's internals moved.
    """
    query = getattr(client, "_query", None)
    spawn = getattr(query, "_spawn_control_request_handler", None)
    if query is None or spawn is None:
        log.warning("SDK internals changed: approval reasons are not told apart")
        return False

    def spawn_noting(request: dict[str, Any]) -> None:
        body = request.get("request") if isinstance(request, dict) else None
        if isinstance(body, dict) and body.get("subtype") == "can_use_tool":
            note(body)
        spawn(request)

    query._spawn_control_request_handler = spawn_noting
    return True
