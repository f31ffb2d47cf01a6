"""Pending tool approvals in Redis, shared by the API (lists, claims) and workers (records).

Keys (under the common prefix):

- ``{p}:approvals:{sid}`` hash: request id → the ``approval.requested`` event (JSON) of every
  request still waiting. The owning worker writes it from the runner's events and replaces it
  with the runner's own list whenever it (re-)attaches, so a worker killed mid-way leaves
  nothing stale behind and loses nothing.
- ``{p}:approvals:{sid}:claims`` hash: request id → who claimed or ended it. The API claims a
  request atomically before it sends an answer, so a decision is applied exactly once; a
  request that ended (answered, timed out, cancelled) is marked here too, so a late answer is
  a conflict (409), not an unknown request (404).
- ``{p}:approvals:{sid}:grants`` set: the tools a person allowed "for this session". The owning
  worker adds a tool once the runner applied such an answer (the tool comes from the request
  the API claimed, never from what the container says), and hands the set to every fresh
  runner of the session (a crashed runner's restart), so a grant outlives the runner.

All three expire a week after their last write, like the session's events.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from enum import Enum
from typing import Any

import msgspec
from redis.asyncio import Redis

_TTL_SECONDS = 7 * 24 * 3600

# KEYS[1] pending, KEYS[2] claims; ARGV[1] request id, ARGV[2] claim value, ARGV[3] ttl.
# Returns {code, the request's record}: the record rides along so the answer can name the
# tool without a second round trip.
_CLAIM = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {1, ''} end
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return {0, ''} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {2, record}
"""
# Release a claim only if it is still ours (the answer could not be sent).
_UNCLAIM = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""


class Claim(Enum):
    OK = "ok"
    UNKNOWN = "unknown"  # no such pending request
    TAKEN = "taken"  # answered (or being answered) already, or ended


class _Tool(msgspec.Struct):
    tool: str = ""


_tool_of = msgspec.json.Decoder(_Tool)


class ApprovalStore:
    """Typed access to the pending approvals of sessions."""

    def __init__(self, redis: Redis, *, prefix: str = "agc") -> None:
        self.redis = redis
        self.p = prefix

    def _pending(self, sid: str) -> str:
        return f"{self.p}:approvals:{sid}"

    def _claims(self, sid: str) -> str:
        return f"{self.p}:approvals:{sid}:claims"

    def _grants(self, sid: str) -> str:
        return f"{self.p}:approvals:{sid}:grants"

    # -- the owning worker -----------------------------------------------------------------
    async def requested(self, sid: str, request_id: str, event_json: bytes) -> None:
        """Record a request the runner is waiting on."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self._pending(sid), request_id, event_json)
        pipe.expire(self._pending(sid), _TTL_SECONDS)
        await pipe.execute()

    async def resolved(self, sid: str, request_id: str, how: str) -> None:
        """Forget a request that ended; a later answer to it is then a conflict."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(self._pending(sid), request_id)
        pipe.hsetnx(self._claims(sid), request_id, how)
        pipe.expire(self._claims(sid), _TTL_SECONDS)
        await pipe.execute()

    async def replace(self, sid: str, pending: Iterable[dict[str, Any]]) -> None:
        """Make the pending set exactly what the runner says it is waiting on."""
        items = {str(p["request_id"]): msgspec.json.encode(p) for p in pending}
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self._pending(sid))
        if items:
            pipe.hset(self._pending(sid), mapping=items)  # type: ignore[arg-type]
            pipe.expire(self._pending(sid), _TTL_SECONDS)
        await pipe.execute()

    async def grant(self, sid: str, tool: str) -> None:
        """Remember that a person allowed ``tool`` for the rest of the session."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.sadd(self._grants(sid), tool)
        pipe.expire(self._grants(sid), _TTL_SECONDS)
        await pipe.execute()

    async def grants(self, sid: str) -> list[str]:
        """The tools allowed for the rest of the session, sorted (a fresh runner's start)."""
        raw = await self.redis.smembers(self._grants(sid))
        return sorted(t.decode() if isinstance(t, bytes) else str(t) for t in raw)

    async def forget(self, sid: str) -> None:
        """Drop everything of a session that ended."""
        await self.redis.delete(self._pending(sid), self._claims(sid), self._grants(sid))

    # -- the API ---------------------------------------------------------------------------
    async def pending(self, sid: str) -> list[dict[str, Any]]:
        """The requests waiting for an answer, oldest first."""
        raw = await self.redis.hvals(self._pending(sid))
        out = [msgspec.json.decode(v) for v in raw]
        return sorted(out, key=lambda r: float(r.get("ts") or 0))

    async def counts(self, sids: Iterable[str]) -> dict[str, int]:
        """How many requests wait in each session."""
        sids = list(sids)
        if not sids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for sid in sids:
            pipe.hlen(self._pending(sid))
        return {sid: int(n) for sid, n in zip(sids, await pipe.execute(), strict=True)}

    async def claim(self, sid: str, request_id: str, claimant: str) -> tuple[Claim, str]:
        """Take the right to answer ``request_id``, atomically; only one caller ever gets OK.

        Returns the outcome and, with OK, the tool of the claimed request.
        """
        code, record = await self.redis.eval(
            _CLAIM,
            2,
            self._pending(sid),
            self._claims(sid),
            request_id,
            claimant,
            _TTL_SECONDS,
        )
        claim = {0: Claim.UNKNOWN, 1: Claim.TAKEN, 2: Claim.OK}[int(code)]
        tool = ""
        if claim is Claim.OK:
            with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                tool = _tool_of.decode(record).tool
        return claim, tool

    async def unclaim(self, sid: str, request_id: str, claimant: str) -> None:
        """Give a claim back (the answer could not be sent), if it is still ``claimant``'s."""
        await self.redis.eval(_UNCLAIM, 1, self._claims(sid), request_id, claimant)
