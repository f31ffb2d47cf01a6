"""Pending approvals in a real Redis: an answer is claimed exactly once, a worker's records heal."""

from __future__ import annotations

import asyncio

import msgspec
from redis.asyncio import Redis

from broker.approvals import ApprovalStore, Claim

SID = "conv-0123456789abcdef"


def request(rid: str, ts: float) -> dict[str, object]:
    return {"type": "approval.requested", "request_id": rid, "tool": "Bash", "ts": ts}


async def test_many_concurrent_answers_only_one_wins(redis: Redis) -> None:
    store = ApprovalStore(redis, prefix="t1")
    await store.requested(SID, "apr-1", msgspec.json.encode(request("apr-1", 1.0)))
    # separate connections, so the claims really race inside Redis
    clients = [Redis(connection_pool=redis.connection_pool) for _ in range(20)]
    results = await asyncio.gather(
        *(
            ApprovalStore(c, prefix="t1").claim(SID, "apr-1", f"ans-{i}")
            for i, c in enumerate(clients)
        )
    )
    outcomes = [claim for claim, _ in results]
    assert outcomes.count(Claim.OK) == 1 and outcomes.count(Claim.TAKEN) == 19
    # the winner learns the claimed request's tool (what a session-scoped allow grants)
    assert [tool for claim, tool in results if claim is Claim.OK] == ["Bash"]
    assert {tool for claim, tool in results if claim is Claim.TAKEN} == {""}
    assert await store.claim(SID, "apr-404", "x") == (Claim.UNKNOWN, "")


async def test_resolution_makes_a_late_answer_a_conflict_and_unclaim_is_owner_only(
    redis: Redis,
) -> None:
    store = ApprovalStore(redis, prefix="t2")
    await store.requested(SID, "apr-a", msgspec.json.encode(request("apr-a", 2.0)))
    await store.requested(SID, "apr-b", msgspec.json.encode(request("apr-b", 1.0)))
    assert [p["request_id"] for p in await store.pending(SID)] == ["apr-b", "apr-a"]
    assert await store.counts([SID, "conv-ffffffffffffffff"]) == {
        SID: 2,
        "conv-ffffffffffffffff": 0,
    }
    await store.resolved(SID, "apr-a", "timeout")
    assert await store.claim(SID, "apr-a", "late") == (Claim.TAKEN, "")
    assert [p["request_id"] for p in await store.pending(SID)] == ["apr-b"]

    assert await store.claim(SID, "apr-b", "mine") == (Claim.OK, "Bash")
    await store.unclaim(SID, "apr-b", "someone-else")
    assert await store.claim(SID, "apr-b", "again") == (Claim.TAKEN, "")
    await store.unclaim(SID, "apr-b", "mine")
    assert await store.claim(SID, "apr-b", "again") == (Claim.OK, "Bash")


async def test_replace_makes_pending_exactly_the_runners_list(redis: Redis) -> None:
    store = ApprovalStore(redis, prefix="t3")
    await store.requested(SID, "apr-stale", msgspec.json.encode(request("apr-stale", 1.0)))
    await store.replace(SID, [request("apr-live", 3.0)])
    assert [p["request_id"] for p in await store.pending(SID)] == ["apr-live"]
    await store.replace(SID, [])
    assert await store.pending(SID) == []
    await store.grant(SID, "Bash")
    await store.forget(SID)
    assert await redis.keys("t3:*") == []


async def test_grants_are_a_set_that_ends_with_the_session(redis: Redis) -> None:
    store = ApprovalStore(redis, prefix="t4")
    assert await store.grants(SID) == []
    for tool in ("Write", "Bash", "Write"):
        await store.grant(SID, tool)
    assert await store.grants(SID) == ["Bash", "Write"]
    assert await store.grants("conv-ffffffffffffffff") == []
    assert 0 < await redis.ttl(f"t4:approvals:{SID}:grants") <= 7 * 24 * 3600
    await store.forget(SID)
    assert await store.grants(SID) == []
