"""The per-key cap on open SSE streams holds across API processes (leases in Redis).

Two API processes (uvicorn, real NATS and Redis) serve one session; its key opens streams
through both, as a client behind a load balancer would, and the one over the cap gets 429.
The leases are also tested for what a crash leaves: a dead process's leases stop counting
once they lapse, and live ones are renewed for as long as their streams are open.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from nats.aio.client import Client as NATS
from redis.asyncio import Redis

from agcluster.procs import Service
from api.limits import StreamSlots, TooManyRequests
from broker.streams import ensure_streams
from tests.support.api_server import ServedApi, api_settings, serve_api
from tests.support.scripted_session import ScriptedSession, create_session

CAP = 2


@contextlib.asynccontextmanager
async def two_apis(
    nats_server: Service, redis_server: Service, tmp_path: Path, secret_key: str
) -> AsyncIterator[tuple[ServedApi, ServedApi]]:
    settings = api_settings(
        nats_server.url, redis_server.url, secret_key, tmp_path, max_streams_per_key=CAP
    )
    async with serve_api(settings) as a, serve_api(settings) as b:
        yield a, b


@contextlib.asynccontextmanager
async def open_stream(api: ServedApi, sess: ScriptedSession) -> AsyncIterator[httpx.Response]:
    async with (
        httpx.AsyncClient(base_url=api.base_url, timeout=30) as c,
        c.stream("GET", f"/api/agents/{sess.session_id}/events", headers=sess.auth) as r,
    ):
        yield r


async def test_a_key_over_its_stream_cap_gets_429_whichever_api_it_reaches(
    nats_server: Service, redis_server: Service, tmp_path: Path, secret_key: str, nc: NATS
) -> None:
    await ensure_streams(nc.jetstream())
    async with two_apis(nats_server, redis_server, tmp_path, secret_key) as (a, b):
        sess = await create_session(a.settings.redis_url, a.settings.secret())
        async with open_stream(a, sess) as first, open_stream(b, sess) as second:
            assert (first.status_code, second.status_code) == (200, 200)
            # One stream through each process: the key is at its cap on both.
            for api in (a, b):
                async with open_stream(api, sess) as over:
                    assert over.status_code == 429, over.headers  # (a 200's body never ends)
                    body = (await over.aread()).decode()
                    assert "max_streams_per_key" in body
                    assert over.headers["retry-after"]
        # Both closed: their leases were given back, so the key may stream again at once.
        async with open_stream(b, sess) as again:
            assert again.status_code == 200


@pytest.fixture
async def slots_redis(redis_server: Service) -> AsyncIterator[Redis]:
    r = Redis.from_url(redis_server.url)
    yield r
    await r.aclose()


async def test_a_dead_processs_leases_lapse_and_a_live_ones_are_renewed(
    slots_redis: Redis,
) -> None:
    prefix = "agc-capt"
    live = StreamSlots(slots_redis, prefix=prefix, per_key=1, retry_after=1, lease=0.6)
    dead = StreamSlots(slots_redis, prefix=prefix, per_key=1, retry_after=1, lease=0.6)
    key = f"{prefix}:streams:key:k1"

    lease = await live.acquire("k1")
    renewing = asyncio.create_task(live.renew())
    try:
        first_until = (await slots_redis.zscore(key, lease.member)) or 0.0

        async def renewed() -> bool:
            return ((await slots_redis.zscore(key, lease.member)) or 0.0) > first_until

        async with asyncio.timeout(10):
            while not await renewed():
                await asyncio.sleep(0.05)
        # Renewed, so it still counts: the other process is refused.
        with pytest.raises(TooManyRequests):
            await dead.acquire("k1")
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing

    # Nobody renews it now (its process "died"): once it lapses, the key may stream again.
    async def taken() -> bool:
        try:
            await dead.acquire("k1")
        except TooManyRequests:
            return False
        return True

    async with asyncio.timeout(10):
        while not await taken():
            await asyncio.sleep(0.05)
    await dead.release(next(iter(dead.held.values())))
    assert await slots_redis.zcard(key) == 0
