"""Placement: launches from the shared queue go to the least loaded worker.

Real NATS (the launch work queue) and Redis (the heartbeats that carry each worker's load),
workers on in-memory hosts. Without placement, JetStream gives each launch to whichever worker
asked first, so a busy worker takes as many as an idle one.
"""

from __future__ import annotations

from collections import Counter

from broker import subjects
from broker.commands import Launch, encode_command
from broker.state import WorkerInfo
from tests.support.wait import until
from tests.support.worker_env import CONFIG, Env
from workers.placement import lighter_peer
from workers.worker import Worker


def test_only_a_lighter_live_peer_with_room_takes_precedence() -> None:
    me = "w-me"
    assert lighter_peer(me, 3, {"w-b": WorkerInfo(load=1, accepting=True)})
    assert not lighter_peer(me, 3, {"w-b": WorkerInfo(load=3, accepting=True)})
    # A peer that takes no launches (full, or draining) is no reason to hold back.
    assert not lighter_peer(me, 3, {"w-b": WorkerInfo(load=0, accepting=False)})
    # Our own heartbeat is not a peer.
    assert not lighter_peer(me, 3, {me: WorkerInfo(load=0, accepting=True)})
    # A worker from before placement reports sessions and its capacity only.
    assert lighter_peer(me, 3, {"w-old": WorkerInfo(sessions=2, max_sessions=50)})
    assert not lighter_peer(me, 3, {"w-old": WorkerInfo(sessions=2, max_sessions=2)})


async def test_an_unreadable_heartbeat_never_stops_launches(env: Env) -> None:
    # A heartbeat this version cannot read (key layout: broker/state.py): alive, says nothing.
    await env.store.heartbeat("w-odd", WorkerInfo(), ttl=5)
    await env.store.redis.set("agc:worker:w-odd", b'{"load": "many"}', px=5000)
    odd = (await env.store.live_workers())["w-odd"]
    assert odd == WorkerInfo()
    assert not lighter_peer("w-me", 3, {"w-odd": odd})


async def publish_launch(env: Env) -> str:
    """A launch as the API publishes it, on the shared work queue."""
    sid = await env.record()
    rec = await env.store.get(sid)
    assert rec is not None
    cmd = Launch(
        session_id=sid,
        agent_id=rec.agent_id,
        config_id="fake",
        config=CONFIG,
        sealed_api_key=rec.sealed_api_key,
    )
    await env.nc.jetstream().publish(
        subjects.LAUNCH, encode_command(cmd), headers={"Nats-Msg-Id": sid}
    )
    return sid


async def launch_through_queue(env: Env) -> str:
    sid = await publish_launch(env)

    async def running() -> bool:
        return await env.status(sid) == "running"

    await until(running, 10, f"{sid} to run")
    return sid


def owners(workers: list[Worker]) -> Counter[str]:
    return Counter({w.registry.worker_id: len(w.registry.sessions) for w in workers})


async def test_each_launch_goes_to_a_least_loaded_worker(env: Env) -> None:
    # No brief looks for launches nobody lighter took during the test (there are none): each
    # launch goes to a worker that saw itself among the lightest.
    idle = [await env.worker(f"w-idle{i}", loops=True, placement_defer=60.0) for i in range(2)]
    busy = await env.worker("w-busy", placement_defer=60.0)
    busy.registry.spawn(busy.upkeep.heartbeat_loop())  # alive, however slow the launches below
    for _ in range(3):
        await env.launch(busy)  # three sessions already
    # It takes launches only after that, as a restarted worker does once it re-attached its
    # sessions.
    busy.registry.spawn(busy.launcher.run())

    async def seen_busy() -> bool:
        info = (await env.store.live_workers()).get("w-busy")
        return info is not None and info.load == 3

    await until(seen_busy, 5, "the busy worker's load in its heartbeat")
    workers = [busy, *idle]
    for _ in range(7):
        before = owners(workers)
        await launch_through_queue(env)
        after = owners(workers)
        (taker,) = (after - before).keys()
        # Each launch went to one of the least loaded workers, never to a busier one.
        assert before[taker] == min(before.values()), (taker, before)
    # Ten sessions on three workers: the lighter two caught up first, and now all are even.
    assert sorted(after.values()) == [3, 3, 4] and after["w-busy"] <= 4, after


async def test_a_busier_worker_still_takes_what_no_lighter_peer_takes(env: Env) -> None:
    busy = await env.worker("w-busy", loops=True, placement_defer=0.2)
    await env.launch(busy)
    # A live, empty peer that never pulls (its launcher is stuck): the launch must not wait
    # for it forever.
    stuck = await env.worker("w-stuck")
    await stuck.upkeep.heartbeat_once()
    assert (await env.store.live_workers())["w-stuck"].load == 0
    sid = await launch_through_queue(env)
    assert await env.owner(sid) == "w-busy"
