"""The Redis session store against a real redis-server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis

from broker.state import SessionRecord, SessionStore, WorkerInfo


def _rec(sid: str, key: str = "kh1", **kw: Any) -> SessionRecord:
    return SessionRecord(
        session_id=sid, agent_id="agent-1", config_id="code-assistant", key_hash=key, **kw
    )


async def test_create_get_update_list_delete(redis: Redis) -> None:
    store = SessionStore(redis, prefix="t1")
    await store.create(_rec("conv-aaaaaaaa", limits={"cpu_quota": 100000}))
    await store.create(_rec("conv-bbbbbbbb", key="kh2"))
    got = await store.get("conv-aaaaaaaa")
    assert got is not None and got.status == "starting" and got.limits == {"cpu_quota": 100000}
    assert got.created_at > 0

    await store.set_status("conv-aaaaaaaa", "running", sdk_session_id="s1")
    await store.add_usage("conv-aaaaaaaa", input_tokens=10, output_tokens=5, cost_usd=0.25)
    await store.add_usage("conv-aaaaaaaa", input_tokens=1, output_tokens=1, cost_usd=0.5)
    got = await store.get("conv-aaaaaaaa")
    assert got is not None
    assert (got.status, got.sdk_session_id, got.turns) == ("running", "s1", 2)
    assert (got.input_tokens, got.output_tokens, got.cost_usd) == (11, 6, 0.75)

    assert [r.session_id for r in await store.list_records(key_hash="kh1")] == ["conv-aaaaaaaa"]
    assert len(await store.list_records()) == 2

    await store.delete("conv-aaaaaaaa")
    assert await store.get("conv-aaaaaaaa") is None
    assert await store.list_records(key_hash="kh1") == []
    # An update after deletion must not resurrect a half-record.
    await store.update("conv-aaaaaaaa", status="idle")
    assert await store.get("conv-aaaaaaaa") is None


async def test_public_view_hides_secrets(redis: Redis) -> None:
    store = SessionStore(redis, prefix="t2")
    await store.create(_rec("conv-cccccccc", sealed_api_key="v1.secret", key="khash"))
    rec = await store.get("conv-cccccccc")
    assert rec is not None
    public = rec.public()
    assert "v1.secret" not in str(public) and "khash" not in str(public)


async def test_ownership_and_atomic_claim(redis: Redis) -> None:
    store = SessionStore(redis, prefix="t3")
    await store.create(_rec("conv-dddddddd"))
    await store.set_owner("conv-dddddddd", "w1", "cid")
    assert await store.owned_by("w1") == ["conv-dddddddd"]
    results = await asyncio.gather(
        store.claim("conv-dddddddd", "w2", "w1"), store.claim("conv-dddddddd", "w3", "w1")
    )
    assert sorted(results) == [False, True]
    winner = "w2" if results[0] else "w3"
    rec = await store.get("conv-dddddddd")
    assert rec is not None and rec.owner == winner and rec.container_id == "cid"
    assert await store.owned_by("w1") == []
    assert await store.owned_by(winner) == ["conv-dddddddd"]


async def test_worker_liveness_expires(redis: Redis) -> None:
    store = SessionStore(redis, prefix="t4")
    await store.heartbeat("w1", WorkerInfo(sessions=2), ttl=0.3)
    await store.heartbeat("w2", WorkerInfo(), ttl=30)
    assert set(await store.live_workers()) == {"w1", "w2"}
    # Redis expires the key on its own clock: wait for that, however slow this machine is.
    async with asyncio.timeout(10):
        while await store.is_alive("w1"):
            await asyncio.sleep(0.05)
    assert set(await store.live_workers()) == {"w2"}
    assert not await store.is_alive("w1")
    await store.worker_gone("w2")
    assert await store.live_workers() == {}


async def test_a_lost_workers_sessions_end_once_on_redis_time(redis: Redis) -> None:
    store = SessionStore(redis, prefix="t5")
    t0 = time.monotonic()
    assert await store.dead_for("w1") == 0.0  # the first to see it dead starts the count
    async with asyncio.timeout(10):
        while (dead := await store.dead_for("w1")) < 0.2:
            await asyncio.sleep(0.05)
    assert 0.2 <= dead <= time.monotonic() - t0 + 0.01
    await store.heartbeat("w1", WorkerInfo(), ttl=5)  # back alive: the count starts over
    assert await store.dead_for("w1") == 0.0

    for sid, status in (("conv-aaaa0001", "idle"), ("conv-aaaa0002", "stopping")):
        await store.create(
            SessionRecord(session_id=sid, agent_id="a", config_id="c", status=status)
        )
        await store.set_owner(sid, "w1")
    await store.create(
        SessionRecord(session_id="conv-aaaa0003", agent_id="a", config_id="c", status="starting")
    )
    await store.set_owner("conv-aaaa0003", "w1")
    assert await store.end_lost("conv-aaaa0001", "w2", "x") is None  # not w2's
    outcomes = await asyncio.gather(
        *(store.end_lost("conv-aaaa0001", "w1", "gone") for _ in range(3))
    )
    assert sorted(outcomes, key=str) == [None, None, "idle"]  # exactly one caller ends it
    assert await store.end_lost("conv-aaaa0002", "w1", "gone") == "stopping"
    assert await store.end_lost("conv-aaaa0003", "w1", "gone") is None  # a launch in flight
    one, two = await store.get_many(["conv-aaaa0001", "conv-aaaa0002"])
    assert (one.status, one.error, two.status) == ("failed", "gone", "stopped")
    assert one.stopped_at > 0
    assert await store.owned_by("w1") == ["conv-aaaa0003"]
