"""Operator limits: resource ceilings, live-session caps, a launch rate, stream caps, capacity.

- **Ceilings** on what a config may ask for (CPU, memory, pids, storage): above one, the
  config is invalid (422 naming the field) wherever it is used: launch, save, validate.
- **Admission** of a launch, atomically in Redis (one Lua script, so concurrent launches
  through several API processes cannot overshoot): a global and a per-key maximum of live
  sessions and a per-key launch rate (429 with ``Retry-After``), and the workers' capacity
  (503 with ``Retry-After`` when every live worker is at its ``max_sessions``), instead of
  a launch that waits out its timeout in the queue. Live sessions are kept in sorted sets
  pruned on every admission (a session whose record is gone or final no longer counts).
- **Streams**: a per-key maximum of concurrent SSE streams, across every API process (429),
  kept as leases in Redis that each API process renews while its streams are open.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from api.errors import ApiError, Unavailable
from api.settings import ApiSettings
from broker.state import SessionStore
from configs.errors import FieldError, InvalidConfig
from configs.model import AgentConfig, format_size, parse_size

T = TypeVar("T")

log = structlog.get_logger("agc.api.limits")


class TooManyRequests(ApiError):
    status_code, code = 429, "too_many_requests"


@dataclass(frozen=True, slots=True)
class Ceilings:
    cpu_quota: int
    memory_bytes: int
    pids: int
    storage_bytes: int

    @classmethod
    def from_settings(cls, s: ApiSettings) -> Ceilings:
        return cls(
            cpu_quota=s.max_cpu_quota,
            memory_bytes=parse_size(s.max_memory),
            pids=s.max_pids,
            storage_bytes=parse_size(s.max_storage),
        )


def check_ceilings(config: AgentConfig, ceilings: Ceilings) -> AgentConfig:
    """Return ``config`` if its resource limits are within the operator's ceilings, else 422."""
    rl = config.resource_limits
    errors: list[FieldError] = []

    def over(name: str, env: str, have: str, most: str) -> None:
        errors.append(
            {
                "field": f"resource_limits.{name}",
                "message": f"{have} is above this platform's ceiling of {most} ({env})",
            }
        )

    if rl.cpu_quota > ceilings.cpu_quota:
        over("cpu_quota", "AGC_MAX_CPU_QUOTA", str(rl.cpu_quota), str(ceilings.cpu_quota))
    if rl.memory_bytes > ceilings.memory_bytes:
        over("memory_limit", "AGC_MAX_MEMORY", rl.memory_limit, format_size(ceilings.memory_bytes))
    if rl.pids_limit > ceilings.pids:
        over("pids_limit", "AGC_MAX_PIDS", str(rl.pids_limit), str(ceilings.pids))
    if rl.storage_bytes > ceilings.storage_bytes:
        over(
            "storage_limit",
            "AGC_MAX_STORAGE",
            rl.storage_limit,
            format_size(ceilings.storage_bytes),
        )
    if errors:
        raise InvalidConfig(errors)
    return config


# KEYS: live set, the key's live set, the key's launch times.
# ARGV: sid, now, max live, max live per key, launches per window, window s, capacity (-1: none),
#       session hash prefix.
_ADMIT = """
-- A session counts until its record is final; a launch is admitted before its record is
-- written, so a missing record only stops counting after a grace period.
local function prune(key)
  local ids = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  for i = 1, #ids, 2 do
    local st = redis.call('HGET', ARGV[8] .. ids[i], 'status')
    if st == 'stopped' or st == 'failed'
      or ((not st) and tonumber(ids[i + 1]) < tonumber(ARGV[2]) - 120) then
      redis.call('ZREM', key, ids[i])
    end
  end
end
prune(KEYS[1])
prune(KEYS[2])
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)
local rate = tonumber(ARGV[5])
if rate > 0 and redis.call('ZCARD', KEYS[3]) >= rate then
  local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  return {'rate', tostring(tonumber(oldest[2]) + window - now)}
end
local live = redis.call('ZCARD', KEYS[1])
if tonumber(ARGV[3]) > 0 and live >= tonumber(ARGV[3]) then return {'global', tostring(live)} end
local mine = redis.call('ZCARD', KEYS[2])
if tonumber(ARGV[4]) > 0 and mine >= tonumber(ARGV[4]) then return {'key', tostring(mine)} end
local capacity = tonumber(ARGV[7])
if capacity >= 0 and live >= capacity then return {'capacity', tostring(live)} end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZADD', KEYS[3], now, ARGV[1])
redis.call('EXPIRE', KEYS[3], math.ceil(window) + 1)
return {'ok', ''}
"""


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class Admission:
    """Admit launches against the operator's caps and the workers' capacity (see module doc)."""

    def __init__(self, store: SessionStore, settings: ApiSettings) -> None:
        self.store = store
        self.s = settings
        self._script = store.redis.register_script(_ADMIT)

    def _k(self, *parts: str) -> str:
        return ":".join((self.store.p, *parts))

    async def capacity(self) -> int:
        """Sessions the live workers can hold together (-1: a worker did not say, no cap)."""
        workers = await self.store.live_workers()
        if not workers:
            raise Unavailable(
                "no worker is running: start one with `agcluster worker`",
                headers={"Retry-After": str(self.s.retry_after)},
            )
        total = 0
        for info in workers.values():
            if info.max_sessions is None:
                return -1
            total += info.max_sessions
        return total

    async def admit(self, session_id: str, key_hash: str) -> None:
        """Count the session as live, or raise 429/503 saying which limit it hit."""
        s = self.s
        capacity = await self.capacity()
        outcome, value = await self._script(
            keys=[self._k("live"), self._k("live", "key", key_hash), self._k("launches", key_hash)],
            args=[
                session_id,
                time.time(),
                s.max_live_sessions,
                s.max_sessions_per_key,
                s.launch_rate,
                s.launch_rate_window,
                capacity,
                self._k("session", ""),
            ],
        )
        match _s(outcome):
            case "ok":
                return
            case "rate":
                wait = max(1, math.ceil(float(_s(value))))
                raise TooManyRequests(
                    f"launch rate limit: at most {s.launch_rate} launches per "
                    f"{s.launch_rate_window:g} s per API key (AGC_LAUNCH_RATE); retry in {wait} s",
                    headers={"Retry-After": str(wait)},
                    limit="launch_rate",
                )
            case "global":
                raise TooManyRequests(
                    f"this platform runs at most {s.max_live_sessions} sessions at once "
                    "(AGC_MAX_LIVE_SESSIONS); stop one or retry later",
                    headers={"Retry-After": str(s.retry_after)},
                    limit="max_live_sessions",
                )
            case "key":
                raise TooManyRequests(
                    f"this API key already has {s.max_sessions_per_key} live sessions, the most "
                    "allowed (AGC_MAX_SESSIONS_PER_KEY); stop one first",
                    headers={"Retry-After": str(s.retry_after)},
                    limit="max_sessions_per_key",
                )
            case _:
                raise Unavailable(
                    f"every worker is full ({_s(value)} live sessions, capacity {capacity}); "
                    "retry when a session ends or add a worker",
                    headers={"Retry-After": str(s.retry_after)},
                    reason="no_capacity",
                )

    async def rename(self, old: str, new: str, key_hash: str) -> None:
        """Count the admitted launch under the id it finally got (a warm slot's)."""
        now = time.time()
        pipe = self.store.redis.pipeline(transaction=True)
        for key in (self._k("live"), self._k("live", "key", key_hash)):
            pipe.zrem(key, old)
            pipe.zadd(key, {new: now})
        await pipe.execute()

    async def release(self, session_id: str, key_hash: str) -> None:
        """Stop counting a session (its launch was refused or failed)."""
        pipe = self.store.redis.pipeline(transaction=True)
        pipe.zrem(self._k("live"), session_id)
        pipe.zrem(self._k("live", "key", key_hash), session_id)
        await pipe.execute()


# Seconds an open stream's lease lasts unless its API process renews it (every third of it).
STREAM_LEASE = 30.0

# Drop lapsed leases, count, and take one if there is room: one atomic step on Redis's clock.
_TAKE_LEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# Extend this process's leases of one key (those already lapsed and dropped stay dropped).
_RENEW_LEASES = """
local t = redis.call('TIME')
local until_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', until_ms, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""


@dataclass(frozen=True, slots=True)
class StreamLease:
    """One open SSE stream's place in its key's count."""

    key_hash: str
    member: str


class StreamSlots:
    """Concurrent SSE streams per API key, counted across every API process.

    Each open stream holds a lease: a member of the key's Redis sorted set whose score is when
    it lapses. Taking one is one Lua script (drop the lapsed, count, add), so API processes
    behind one load balancer cannot overshoot together. This process renews its leases every
    third of ``STREAM_LEASE`` (:meth:`renew`, run by the lifespan), so the streams of an API
    process that died stop counting within ``STREAM_LEASE`` seconds.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        per_key: int,
        retry_after: int,
        lease: float = STREAM_LEASE,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.per_key = per_key
        self.retry_after = retry_after
        self.lease_ms = int(lease * 1000)
        self._instance = uuid.uuid4().hex[:12]
        self._numbers = itertools.count()
        # The leases this process holds (renewed), by member.
        self.held: dict[str, StreamLease] = {}
        self._releasing: set[asyncio.Task[None]] = set()

    def _key(self, key_hash: str) -> str:
        return f"{self.prefix}:streams:key:{key_hash}"

    async def acquire(self, key_hash: str) -> StreamLease:
        """A lease for one more stream of ``key_hash``, or 429 when it has ``per_key`` open."""
        lease = StreamLease(key_hash, f"{self._instance}:{next(self._numbers)}")
        if self.per_key <= 0:
            return lease  # no cap: nothing to count
        took = await self.redis.eval(
            _TAKE_LEASE, 1, self._key(key_hash), self.per_key, self.lease_ms, lease.member
        )
        if not int(took):
            raise TooManyRequests(
                f"this API key already has {self.per_key} open streams, the most allowed "
                "(AGC_MAX_STREAMS_PER_KEY); close one first",
                headers={"Retry-After": str(self.retry_after)},
                limit="max_streams_per_key",
            )
        self.held[lease.member] = lease
        return lease

    async def release(self, lease: StreamLease) -> None:
        """Give a lease back (once; a lease Redis could not be told about lapses on its own)."""
        if self.held.pop(lease.member, None) is None:
            return
        try:
            await self.redis.zrem(self._key(lease.key_hash), lease.member)
        except (RedisError, OSError) as exc:
            log.warning("stream lease not returned; it lapses by itself", error=str(exc))

    def hold(self, lease: StreamLease, stream: AsyncIterator[T]) -> AsyncIterator[T]:
        """Keep ``lease`` until ``stream`` ends or is dropped unread, then give it back."""

        async def held() -> AsyncIterator[T]:
            try:
                async for item in stream:
                    yield item
            finally:
                await self.release(lease)

        gen = held()
        # A response never iterated (client gone before the body) still gives the lease back.
        weakref.finalize(gen, self._release_soon, lease)
        return gen

    def _release_soon(self, lease: StreamLease) -> None:
        if lease.member not in self.held:
            return
        try:
            task = asyncio.get_running_loop().create_task(self.release(lease))
        except RuntimeError:  # no loop (shutting down): stop renewing; the lease lapses
            self.held.pop(lease.member, None)
            return
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def renew(self) -> None:
        """Renew this process's leases until cancelled (the lifespan runs it)."""
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            by_key: dict[str, list[str]] = {}
            for lease in list(self.held.values()):
                by_key.setdefault(lease.key_hash, []).append(lease.member)
            if not by_key:
                continue
            try:
                pipe = self.redis.pipeline(transaction=False)
                for key_hash, members in by_key.items():
                    pipe.eval(_RENEW_LEASES, 1, self._key(key_hash), self.lease_ms, *members)
                await pipe.execute()
            except (RedisError, OSError) as exc:
                # Redis restarting: try again next time (a lapse frees a slot, never takes one).
                log.warning("stream leases not renewed", error=str(exc))
