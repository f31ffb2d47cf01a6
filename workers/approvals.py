"""The session relay's part in tool approvals: keep Redis's pending list and the waiting flag.

The runner is the one waiting in ``can_use_tool``; this only mirrors what it reports, so the API
can list and claim requests. Every ``runner.attached`` notice carries the runner's own list of
pending requests, and a (re-)attaching worker replaces its records with it: a worker killed
between publishing an event and recording it leaves nothing stale and loses nothing.

It also keeps the session's grants ("allow for this session"). A grant is recorded from the
platform's side only: the worker notes the ``approve`` command it relays (claimed by the API,
with the tool of the request the person answered) and records that tool once the runner's
``approval.resolved`` shows that very answer (its ``answer_id``) applied. An event the container
makes up can at most confirm a grant a person gave; it can never name a tool. A runner that
starts afresh for the session gets the grants in its ``init``.
"""

from __future__ import annotations

from collections import OrderedDict

from broker.approvals import ApprovalStore
from broker.commands import Approve
from broker.events import (
    AnyEvent,
    ApprovalRequested,
    ApprovalResolved,
    SessionReady,
    SystemNotice,
    UnknownEvent,
)
from broker.state import SessionStore

_REMEMBER = 256


class ApprovalTracker:
    """Pending requests of one session, as its runner last reported them."""

    def __init__(self, store: SessionStore, session_id: str) -> None:
        self.store = ApprovalStore(store.redis, prefix=store.p)
        self.session_id = session_id
        self.waiting: set[str] = set()
        # answer id -> tool of session-scoped allows relayed but not yet seen applied.
        self._granting: OrderedDict[str, str] = OrderedDict()

    def relayed(self, command: Approve) -> None:
        """Note an answer handed to the runner; a session-scoped allow may become a grant."""
        answer = command.answer
        if answer.decision == "allow" and answer.scope == "session" and command.tool:
            self._granting[answer.answer_id] = command.tool
            while len(self._granting) > _REMEMBER:
                self._granting.popitem(last=False)

    async def grants(self) -> list[str]:
        """The tools allowed for the rest of this session (for a fresh runner's init)."""
        return await self.store.grants(self.session_id)

    async def observe(self, event: AnyEvent | UnknownEvent, data: bytes) -> None:
        """Record one relayed event (``data`` is its JSON, stored as the request's record):
        :attr:`waiting` at once, then Redis (which may fail)."""
        match event:
            case ApprovalRequested():
                self.waiting.add(event.request_id)
                await self.store.requested(self.session_id, event.request_id, data)
            case ApprovalResolved():
                self.waiting.discard(event.request_id)
                tool = self._granting.pop(event.answer_id, None) if event.answer_id else None
                if (
                    tool is not None
                    and event.cause == "answer"
                    and event.decision == "allow"
                    and event.scope == "session"
                ):
                    await self.store.grant(self.session_id, tool)
                how = f"{event.cause}:{event.decision} {event.by}".strip()
                await self.store.resolved(self.session_id, event.request_id, how)
            case SessionReady():
                # A (re)started runner: whatever its predecessor waited on died with its CLI.
                self.waiting = set()
                await self.store.replace(self.session_id, [])
            case SystemNotice():
                pending = event.data.get("pending_approvals")
                if event.subtype != "runner.attached" or not isinstance(pending, list):
                    return
                self.waiting = {str(p["request_id"]) for p in pending}
                await self.store.replace(self.session_id, pending)
