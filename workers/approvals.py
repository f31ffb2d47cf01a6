"""The session relay's part in tool approvals: keep Redis's pending list and the waiting flag.

The runner is the one waiting in ``can_use_tool``; this only mirrors what it reports, so the API
can list and claim requests. Every ``runner.attached`` notice carries the runner's own list of
pending requests, and a (re-)attaching worker replaces its records with it: a worker killed
between publishing an event and recording it leaves nothing stale and loses nothing.
"""

from __future__ import annotations

from broker.approvals import ApprovalStore
from broker.events import (
    AnyEvent,
    ApprovalRequested,
    ApprovalResolved,
    SessionReady,
    SystemNotice,
    UnknownEvent,
)
from broker.state import SessionStore


class ApprovalTracker:
    """Pending requests of one session, as its runner last reported them."""

    def __init__(self, store: SessionStore, session_id: str) -> None:
        self.store = ApprovalStore(store.redis, prefix=store.p)
        self.session_id = session_id
        self.waiting: set[str] = set()

    async def observe(self, event: AnyEvent | UnknownEvent, data: bytes) -> None:
        """Record one relayed event (``data`` is its JSON, stored as the request's record):
        :attr:`waiting` at once, then Redis (which may fail)."""
        match event:
            case ApprovalRequested():
                self.waiting.add(event.request_id)
                await self.store.requested(self.session_id, event.request_id, data)
            case ApprovalResolved():
                self.waiting.discard(event.request_id)
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
