"""The session relay's part in tool approvals: keep Redis's pending list and the waiting flag.

The runner is the one waiting in ``can_use_tool``; this only mirrors what it reports, so the API
can list and claim requests. Every ``runner.attached`` notice carries the runner's own list of
pending requests, and a (re-)attaching worker replaces its records with it: a worker killed
between publishing an event and recording it leaves nothing stale and loses nothing.
"""

from __future__ import annotations

from typing import Any

import msgspec

from broker.approvals import ApprovalStore
from broker.state import SessionStore


class _Request(msgspec.Struct):
    request_id: str


class _Resolved(msgspec.Struct):
    request_id: str
    cause: str = ""
    decision: str = ""
    by: str = ""


class _Attached(msgspec.Struct):
    class _Data(msgspec.Struct):
        pending_approvals: list[dict[str, Any]] | None = None

    subtype: str
    data: _Data = msgspec.field(default_factory=_Data)


_request = msgspec.json.Decoder(_Request)
_resolved = msgspec.json.Decoder(_Resolved)
_attached = msgspec.json.Decoder(_Attached)


class ApprovalTracker:
    """Pending requests of one session, as its runner last reported them."""

    def __init__(self, store: SessionStore, session_id: str) -> None:
        self.store = ApprovalStore(store.redis, prefix=store.p)
        self.session_id = session_id
        self.waiting: set[str] = set()

    async def observe(self, kind: str, data: bytes) -> None:
        """Record one relayed event: :attr:`waiting` at once, then Redis (which may fail)."""
        match kind:
            case "approval.requested":
                rid = _request.decode(data).request_id
                self.waiting.add(rid)
                await self.store.requested(self.session_id, rid, data)
            case "approval.resolved":
                done = _resolved.decode(data)
                self.waiting.discard(done.request_id)
                how = f"{done.cause}:{done.decision} {done.by}".strip()
                await self.store.resolved(self.session_id, done.request_id, how)
            case "session.ready":
                # A (re)started runner: whatever its predecessor waited on died with its CLI.
                self.waiting = set()
                await self.store.replace(self.session_id, [])
            case "system":
                notice = _attached.decode(data)
                pending = notice.data.pending_approvals
                if notice.subtype != "runner.attached" or pending is None:
                    return
                self.waiting = {str(p["request_id"]) for p in pending}
                await self.store.replace(self.session_id, pending)
