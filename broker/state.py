"""Session state in Redis, shared by the API and the workers.

Keys (all under one prefix, ``agc`` by default):

- ``{p}:session:{sid}`` hash: the :class:`SessionRecord` fields.
- ``{p}:sessions`` set of every session id; ``{p}:sessions:key:{key_hash}`` the ids launched
  with one API key; ``{p}:sessions:worker:{wid}`` the ids a worker owns.
- ``{p}:worker:{wid}`` a liveness key with a TTL, refreshed by the worker's heartbeat;
  ``{p}:workers`` the set of worker ids ever seen (pruned by whoever notices a dead one);
  ``{p}:worker:{wid}:dead`` when (Redis time) a dead worker was first seen dead.

Only sealed secrets and keyed fingerprints are stored, never a key in the clear.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import msgspec
from redis.asyncio import Redis

TERMINAL_STATUSES = frozenset({"stopped", "failed"})
# The error the API records on a launch it answered with an error (e.g. 504): the session must
# never run, even if a worker had already taken its command (see launch_cancelled).
LAUNCH_CANCELLED = "launch cancelled"
# How long the mark of a dead worker (:meth:`SessionStore.dead_for`) outlives its last check.
DEAD_MARK_TTL = 86_400


class WorkerInfo(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a worker's heartbeat says about it (the value of its liveness key).

    Every field has a default: a heartbeat from another version, or one that cannot be read,
    still marks its worker alive, and what it does not say is unknown (None).
    """

    host: str = ""
    pid: int = 0
    sessions: int = 0
    # None: the worker did not say (no capacity can be counted).
    max_sessions: int | None = None
    started_at: float = 0.0
    # Placement (workers/placement.py): sessions plus launches in hand, and whether it takes
    # launches now. None from a worker that predates placement.
    load: int | None = None
    accepting: bool | None = None
    # The warm pool (workers/pool.py): slots ready now, how many it aims for, their memory.
    pool_ready: int = 0
    pool_size: int = 0
    pool_memory_bytes: int = 0


_worker_info = msgspec.json.Decoder(WorkerInfo)


class SessionRecord(msgspec.Struct, kw_only=True):
    session_id: str
    agent_id: str
    config_id: str
    config_name: str = ""
    status: str = "starting"
    key_hash: str = ""
    sealed_api_key: str = ""
    sealed_mcp_env: str = ""
    owner: str = ""
    container_id: str = ""
    sdk_session_id: str = ""
    # Highest runner sequence the owner has published, and which runner process it came from.
    last_seq: int = 0
    boot_id: str = ""
    created_at: float = 0.0
    last_active: float = 0.0
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    error: str = ""
    limits: dict[str, Any] = msgspec.field(default_factory=dict)
    stopped_at: float = 0.0
    # Token usage beyond input/output, as the model gateway counted it.
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    # The sandbox (container + socket dir) serving the session, and the SHA-256 of the token
    # its runner holds: an adopting worker serves the sandbox again and checks the same token.
    sandbox: str = ""
    gateway_token_sha256: str = ""
    # How the launch went: milliseconds from the worker taking the launch command to the
    # runner's session.ready, and "warm" (a pool slot was bound) or "cold" (a new container).
    launch_ms: int = 0
    launch: str = ""

    def public(self) -> dict[str, Any]:
        """The fields a client may see: no sealed secrets, no key fingerprint."""
        return {
            "session_id": self.session_id,
            "agent_id": self.agent_id,
            "config_id": self.config_id,
            "config_name": self.config_name,
            "status": self.status,
            "created_at": self.created_at,
            "last_active": self.last_active,
            "owner_worker": self.owner or None,
            "turns": self.turns,
            "usage": {
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "cache_creation_input_tokens": self.cache_creation_input_tokens,
                "cache_read_input_tokens": self.cache_read_input_tokens,
            },
            "cost_usd": round(self.cost_usd, 6),
            "limits": self.limits,
            "error": self.error or None,
            "launch_ms": self.launch_ms or None,
            "warm": self.launch == "warm" if self.launch else None,
        }


def launch_cancelled(record: SessionRecord) -> bool:
    """Whether the API cancelled this session's launch (a worker's later "running" does not
    undo that: it only overwrites the status, never the error)."""
    return record.status in TERMINAL_STATUSES or record.error.startswith(LAUNCH_CANCELLED)


_FIELDS = SessionRecord.__struct_fields__
_json = msgspec.json.Encoder()
_INT_FIELDS = {
    "last_seq",
    "turns",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "launch_ms",
}
_FLOAT_FIELDS = {"created_at", "last_active", "cost_usd", "stopped_at"}


def _to_hash(values: dict[str, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for k, v in values.items():
        if k == "limits":
            out[k] = _json.encode(v).decode()
        else:
            out[k] = str(v)
    return out


def _from_hash(raw: dict[str, str]) -> SessionRecord:
    kwargs: dict[str, Any] = {}
    for k, v in raw.items():
        if k not in _FIELDS:
            continue  # written by a newer version
        if k in _INT_FIELDS:
            kwargs[k] = int(float(v or 0))
        elif k in _FLOAT_FIELDS:
            kwargs[k] = float(v or 0)
        elif k == "limits":
            kwargs[k] = msgspec.json.decode(v) if v else {}
        else:
            kwargs[k] = v
    return SessionRecord(**kwargs)


class SessionStore:
    """Typed access to session records, ownership and worker liveness."""

    def __init__(self, redis: Redis, *, prefix: str = "agc") -> None:
        self.redis = redis
        self.p = prefix

    def _k(self, *parts: str) -> str:
        return ":".join((self.p, *parts))

    # -- sessions ------------------------------------------------------------------------
    async def create(self, record: SessionRecord) -> None:
        """Store a new session and index it by caller key."""
        now = time.time()
        record.created_at = record.created_at or now
        record.last_active = record.last_active or now
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(
            self._k("session", record.session_id), mapping=_to_hash(msgspec.structs.asdict(record))
        )
        pipe.sadd(self._k("sessions"), record.session_id)
        if record.key_hash:
            pipe.sadd(self._k("sessions", "key", record.key_hash), record.session_id)
        await pipe.execute()

    async def get(self, session_id: str) -> SessionRecord | None:
        raw = await self.redis.hgetall(self._k("session", session_id))
        if not raw:
            return None
        return _from_hash({_s(k): _s(v) for k, v in raw.items()})

    async def update(self, session_id: str, **fields: Any) -> None:
        """Set some fields of an existing session (no-op for unknown fields is an error)."""
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise KeyError(f"unknown session fields: {sorted(unknown)}")
        key = self._k("session", session_id)
        # Only touch sessions that exist, so a late update never resurrects a deleted one.
        if await self.redis.exists(key):
            await self.redis.hset(key, mapping=_to_hash(fields))

    async def set_status(self, session_id: str, status: str, **fields: Any) -> None:
        extra: dict[str, Any] = {"status": status, **fields}
        if status in TERMINAL_STATUSES:
            extra.setdefault("stopped_at", time.time())
        await self.update(session_id, **extra)

    async def touch(self, session_id: str) -> None:
        """Record real use (a chat, an upload): it postpones the idle timeout."""
        await self.update(session_id, last_active=time.time())

    async def add_usage(
        self, session_id: str, *, input_tokens: int, output_tokens: int, cost_usd: float
    ) -> None:
        key = self._k("session", session_id)
        if not await self.redis.exists(key):
            return
        pipe = self.redis.pipeline(transaction=True)
        pipe.hincrby(key, "turns", 1)
        pipe.hincrby(key, "input_tokens", input_tokens)
        pipe.hincrby(key, "output_tokens", output_tokens)
        pipe.hincrbyfloat(key, "cost_usd", cost_usd)
        await pipe.execute()

    async def add_model_usage(
        self,
        session_id: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cache_creation_input_tokens: int = 0,
        cache_read_input_tokens: int = 0,
        cost_usd: float,
    ) -> None:
        """Add what the model gateway counted (the only source of usage and cost)."""
        key = self._k("session", session_id)
        if not await self.redis.exists(key):
            return
        pipe = self.redis.pipeline(transaction=True)
        pipe.hincrby(key, "input_tokens", input_tokens)
        pipe.hincrby(key, "output_tokens", output_tokens)
        pipe.hincrby(key, "cache_creation_input_tokens", cache_creation_input_tokens)
        pipe.hincrby(key, "cache_read_input_tokens", cache_read_input_tokens)
        pipe.hincrbyfloat(key, "cost_usd", cost_usd)
        await pipe.execute()

    async def count_turn(self, session_id: str) -> None:
        """One more finished turn."""
        key = self._k("session", session_id)
        if await self.redis.exists(key):
            await self.redis.hincrby(key, "turns", 1)

    async def advance_seq(self, session_id: str, boot_id: str, seq: int) -> None:
        await self.update(session_id, boot_id=boot_id, last_seq=seq)

    async def save_config(self, session_id: str, config_json: bytes) -> None:
        """Keep the resolved config a session was launched with (a restarted runner needs it)."""
        await self.redis.set(self._k("config", session_id), config_json)

    async def get_config(self, session_id: str) -> bytes | None:
        raw: bytes | str | None = await self.redis.get(self._k("config", session_id))
        return raw.encode() if isinstance(raw, str) else raw

    async def delete(self, session_id: str) -> None:
        rec = await self.get(session_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self._k("session", session_id), self._k("config", session_id))
        pipe.srem(self._k("sessions"), session_id)
        if rec is not None:
            if rec.key_hash:
                pipe.srem(self._k("sessions", "key", rec.key_hash), session_id)
            if rec.owner:
                pipe.srem(self._k("sessions", "worker", rec.owner), session_id)
        await pipe.execute()

    async def list_ids(self, *, key_hash: str | None = None) -> list[str]:
        key = self._k("sessions", "key", key_hash) if key_hash else self._k("sessions")
        return sorted(_s(m) for m in await self.redis.smembers(key))

    async def list_records(self, *, key_hash: str | None = None) -> list[SessionRecord]:
        """Sessions (all, or one caller's), newest first."""
        ids = await self.list_ids(key_hash=key_hash)
        records = await self.get_many(ids)
        return sorted(records, key=lambda r: r.created_at, reverse=True)

    async def get_many(self, ids: Iterable[str]) -> list[SessionRecord]:
        ids = list(ids)
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for sid in ids:
            pipe.hgetall(self._k("session", sid))
        out: list[SessionRecord] = []
        for raw in await pipe.execute():
            if raw:
                out.append(_from_hash({_s(k): _s(v) for k, v in raw.items()}))
        return out

    # -- ownership -----------------------------------------------------------------------
    async def set_owner(self, session_id: str, worker_id: str, container_id: str = "") -> None:
        rec = await self.get(session_id)
        if rec is None:
            return
        pipe = self.redis.pipeline(transaction=True)
        if rec.owner and rec.owner != worker_id:
            pipe.srem(self._k("sessions", "worker", rec.owner), session_id)
        fields: dict[Any, Any] = {"owner": worker_id}
        if container_id:
            fields["container_id"] = container_id
        pipe.hset(self._k("session", session_id), mapping=fields)
        pipe.sadd(self._k("sessions", "worker", worker_id), session_id)
        await pipe.execute()

    async def claim(self, session_id: str, worker_id: str, expected_owner: str) -> bool:
        """Atomically take ownership if the owner is still ``expected_owner`` (adoption)."""
        key = self._k("session", session_id)
        script = (
            "local cur = redis.call('HGET', KEYS[1], 'owner') "
            "if cur == false then return 0 end "
            "if cur ~= ARGV[1] then return 0 end "
            "redis.call('HSET', KEYS[1], 'owner', ARGV[2]) return 1"
        )
        ok = await self.redis.eval(script, 1, key, expected_owner, worker_id)
        if int(ok) != 1:
            return False
        pipe = self.redis.pipeline(transaction=True)
        pipe.srem(self._k("sessions", "worker", expected_owner), session_id)
        pipe.sadd(self._k("sessions", "worker", worker_id), session_id)
        await pipe.execute()
        return True

    async def owned_by(self, worker_id: str) -> list[str]:
        return sorted(
            _s(m) for m in await self.redis.smembers(self._k("sessions", "worker", worker_id))
        )

    # -- workers -------------------------------------------------------------------------
    async def heartbeat(self, worker_id: str, info: WorkerInfo, ttl: float) -> None:
        """Mark a worker alive for ``ttl`` seconds."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self._k("worker", worker_id), _json.encode(info), px=int(ttl * 1000))
        pipe.sadd(self._k("workers"), worker_id)
        # Alive again: whoever saw it dead starts counting afresh next time.
        pipe.delete(self._k("worker", worker_id, "dead"))
        await pipe.execute()

    async def dead_for(self, worker_id: str) -> float:
        """Seconds since a dead worker was first seen dead (0.0 for the first to see it).

        Measured on Redis's clock, so the hosts' clocks do not matter; the worker's next
        heartbeat (if it ever comes back) clears the mark.
        """
        script = (
            "local t = redis.call('TIME') "
            "local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 "
            "local since = redis.call('GET', KEYS[1]) "
            "if not since then "
            "redis.call('SET', KEYS[1], tostring(now), 'EX', ARGV[1]) return '0' end "
            "return tostring(now - tonumber(since))"
        )
        out = await self.redis.eval(script, 1, self._k("worker", worker_id, "dead"), DEAD_MARK_TTL)
        return float(_s(out))

    async def end_lost(self, session_id: str, worker_id: str, error: str) -> str | None:
        """End a session of a lost worker, atomically and once; return the status it had.

        Only while ``worker_id`` still owns it and it is neither over nor being launched (a
        launch is redelivered to another worker): then it becomes ``failed`` (``stopped`` if
        it was being stopped) and leaves the worker's index. None when there was nothing to do.
        """
        script = (
            "if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return false end "
            "local st = redis.call('HGET', KEYS[1], 'status') "
            "if st == 'stopped' or st == 'failed' or st == 'starting' then return false end "
            "local final = 'failed' if st == 'stopping' then final = 'stopped' end "
            "redis.call('HSET', KEYS[1], 'status', final, 'error', ARGV[2], "
            "'stopped_at', ARGV[3]) "
            "redis.call('SREM', KEYS[2], ARGV[4]) "
            "return st"
        )
        out = await self.redis.eval(
            script,
            2,
            self._k("session", session_id),
            self._k("sessions", "worker", worker_id),
            worker_id,
            error,
            str(time.time()),
            session_id,
        )
        return None if out is None else _s(out)

    async def worker_gone(self, worker_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self._k("worker", worker_id))
        pipe.srem(self._k("workers"), worker_id)
        await pipe.execute()

    async def is_alive(self, worker_id: str) -> bool:
        return bool(await self.redis.exists(self._k("worker", worker_id)))

    async def live_workers(self) -> dict[str, WorkerInfo]:
        """Workers whose liveness key has not expired, with the info they last reported."""
        ids = sorted(_s(m) for m in await self.redis.smembers(self._k("workers")))
        if not ids:
            return {}
        values = await self.redis.mget([self._k("worker", w) for w in ids])
        alive: dict[str, WorkerInfo] = {}
        for wid, val in zip(ids, values, strict=True):
            if val is not None:
                try:
                    alive[wid] = _worker_info.decode(val)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    alive[wid] = WorkerInfo()  # alive; what it says is unknown
        return alive

    async def known_workers(self) -> list[str]:
        return sorted(_s(m) for m in await self.redis.smembers(self._k("workers")))


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v
