"""The warm pool's shared state in Redis: ready slots per config, claimed atomically.

A slot is a sandbox a worker started before any session asked for it (``workers/pool.py``):
its container, volumes and runner already exist under a session id minted in advance, so
once a launch takes that id nothing about naming, files or stopping differs from a cold
launch. Keys (under the session store's prefix):

- ``{p}:pool:ready:{key}`` list of ready slot ids of one pool key (config + its hash);
  the API claims one with ``LPOP``: two launches can never get the same slot.
- ``{p}:pool:slot:{sid}`` the slot's record (JSON :class:`SlotRecord`); the worker that
  launches the session deletes it (``take``): of two workers handling the same launch,
  exactly one gets the slot and the other launches cold.
- ``{p}:pool:worker:{wid}`` the slot ids a worker made (its sweep and its drain).

A slot leaves the ready list exactly once: claimed by a launch, or withdrawn by its worker
(``LREM`` tells the worker whether it got it back or a launch was faster).
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from redis.asyncio import Redis


class SlotRecord(msgspec.Struct, kw_only=True):
    """One warm slot as its worker registered it."""

    session_id: str
    key: str
    config_id: str
    worker_id: str
    container_id: str
    # The image the container runs (its id): a rebuilt image makes the slot stale.
    image_id: str = ""
    # The sandbox directory the container has mounted (a model gateway), if any.
    sandbox: str = ""
    # True when the CLI is already started for the config (a matching init only binds).
    prestarted: bool = False
    created_at: float = 0.0
    # Resident memory of the slot's container once ready (bytes; 0 when unknown).
    memory_bytes: int = 0


_decode = msgspec.json.Decoder(SlotRecord)
_encode = msgspec.json.Encoder(order="sorted")


def pool_key(config: dict[str, Any]) -> str:
    """The pool a config's launches draw from: its id and a hash of everything in it.

    Any change to the config (an edited preset) gives a new key, so a slot started for the
    old one is never handed to a launch of the new one.
    """
    digest = hashlib.sha256(_encode.encode(config)).hexdigest()[:16]
    return f"{config.get('id') or 'inline'}@{digest}"


class PoolStore:
    """Ready lists, slot records and each worker's slot set."""

    def __init__(self, redis: Redis, *, prefix: str = "agc") -> None:
        self.r = redis
        self.p = prefix

    def _ready(self, key: str) -> str:
        return f"{self.p}:pool:ready:{key}"

    def _slot(self, sid: str) -> str:
        return f"{self.p}:pool:slot:{sid}"

    def _worker(self, wid: str) -> str:
        return f"{self.p}:pool:worker:{wid}"

    # -- the launch side -----------------------------------------------------------------
    async def claim(self, key: str) -> str | None:
        """Take a ready slot's session id for a launch (atomic), or None: launch cold."""
        sid = await self.r.lpop(self._ready(key))
        if sid is None:
            return None
        return sid.decode() if isinstance(sid, bytes) else str(sid)

    async def take(self, sid: str) -> SlotRecord | None:
        """The slot record of a claimed session id, removed so that only one caller gets it."""
        pipe = self.r.pipeline(transaction=True)
        pipe.get(self._slot(sid))
        pipe.delete(self._slot(sid))
        raw, deleted = await pipe.execute()
        if raw is None or not deleted:
            return None
        rec = _decode.decode(raw)
        await self.r.srem(self._worker(rec.worker_id), sid)
        return rec

    # -- the worker side -----------------------------------------------------------------
    async def offer(self, rec: SlotRecord) -> None:
        """Register a ready slot and put it on its ready list (last: oldest slots go first)."""
        pipe = self.r.pipeline(transaction=True)
        pipe.set(self._slot(rec.session_id), _encode.encode(rec))
        pipe.sadd(self._worker(rec.worker_id), rec.session_id)
        pipe.rpush(self._ready(rec.key), rec.session_id)
        await pipe.execute()

    async def note(self, wid: str, sid: str) -> None:
        """Remember a slot being made (so a crash mid-way still leaves it findable)."""
        await self.r.sadd(self._worker(wid), sid)

    async def withdraw(self, rec: SlotRecord) -> bool:
        """Take a ready slot back; False when a launch claimed it first (leave it alone)."""
        removed = await self.r.lrem(self._ready(rec.key), 0, rec.session_id)
        if not removed:
            return False
        await self.forget(rec.worker_id, rec.session_id)
        return True

    async def forget(self, wid: str, sid: str) -> None:
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(self._slot(sid))
        pipe.srem(self._worker(wid), sid)
        await pipe.execute()

    async def get(self, sid: str) -> SlotRecord | None:
        raw = await self.r.get(self._slot(sid))
        return None if raw is None else _decode.decode(raw)

    async def slots_of(self, wid: str) -> list[str]:
        members = await self.r.smembers(self._worker(wid))
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def is_ready(self, rec: SlotRecord) -> bool:
        pos = await self.r.lpos(self._ready(rec.key), rec.session_id)
        return pos is not None

    async def ready_count(self, key: str) -> int:
        return int(await self.r.llen(self._ready(key)))
