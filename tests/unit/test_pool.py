"""The warm pool's logic, fast: real NATS and Redis, containers in memory.

Slots are made, claimed, raced for, invalidated and drained by the real ``workers`` parts
over ``tests.support.memory_provider.MemoryProvider`` (whose fake runner answers
``prestart`` as the real one does: tests/runner/test_prestart.py covers the real CLI).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec
import pytest

from broker import subjects
from broker.commands import Launch, encode_command
from broker.pool import PoolStore, SlotRecord, pool_key
from configs.store import load_presets
from tests.support.wait import until
from tests.support.worker_env import Env
from workers.pool import WarmPool
from workers.worker import Worker

PRESET = "code-assistant"


def wire() -> dict[str, Any]:
    return load_presets()[PRESET].to_wire()


async def pooled(env: Env, worker_id: str, *, size: int = 1) -> tuple[Worker, WarmPool]:
    w = await env.worker(worker_id, pool_size=size, pool_configs=PRESET, pool_pause=0.01)
    pool = w.registry.pool
    assert isinstance(pool, WarmPool)
    pool.load_targets()
    return w, pool


def pools(env: Env) -> PoolStore:
    return PoolStore(env.store.redis, prefix="agc")


async def launch_as_api(env: Env, w: Worker) -> tuple[str, bool]:
    """Launch the preset as the API does: claim a slot's id if there is one, else mint one."""
    claimed = await pools(env).claim(pool_key(wire()))
    sid = claimed or f"conv-{uuid.uuid4().hex}"
    await env.record(sid)  # the record the API writes (and a subscription to its events)
    await env.store.save_config(sid, msgspec.json.encode(wire()))
    rec = await env.store.get(sid)
    assert rec is not None
    await w.launcher.launch(
        Launch(
            session_id=sid,
            agent_id="agent-x",
            config_id=PRESET,
            config=wire(),
            sealed_api_key=rec.sealed_api_key,
        )
    )
    return sid, claimed is not None


async def test_a_launch_claims_a_ready_slot_and_only_binds_it(env: Env) -> None:
    w, pool = await pooled(env, "w-a")
    slot = await pool.make(pool.targets[pool_key(wire())])
    assert slot is not None and slot.prestarted
    c = env.provider.containers[slot.container_id]
    assert c.spec is not None and c.spec.pool == slot.key
    assert c.runner is not None and c.runner.prestarted is not None
    assert c.runner.prestarted.config == wire()
    assert await pools(env).ready_count(slot.key) == 1

    sid, claimed = await launch_as_api(env, w)
    assert claimed and sid == slot.session_id
    # The slot's own container and runner process serve the session: claim plus bind.
    assert w.registry.sessions[sid].container_id == slot.container_id
    assert c.runners_started == 1
    init, pre = c.runner.init, c.runner.prestarted
    assert init is not None and init.session_id == sid == pre.session_id
    # What the real runner's AgentSession.accepts checks: this init only binds the CLI.
    assert init.config == pre.config and init.env == pre.env
    assert not init.api_key and not init.mcp_env and init.resume is None
    assert init.gateway_token  # the session's token, bound at claim time
    rec = await env.store.get(sid)
    assert rec is not None and rec.status == "running" and rec.launch == "warm"
    assert rec.launch_ms > 0 and rec.owner == "w-a"
    assert rec.public()["warm"] is True
    # Gone from the pool for good: never handed to a second session.
    assert await pools(env).get(sid) is None
    assert await pools(env).ready_count(slot.key) == 0
    await pool.sweep()
    assert pool.ready == 0

    await env.chat(sid, "hello")
    assert c.runner.chats == ["hello"]


async def test_a_miss_launches_cold(env: Env) -> None:
    w, _pool = await pooled(env, "w-a")
    sid, claimed = await launch_as_api(env, w)
    assert not claimed
    rec = await env.store.get(sid)
    assert rec is not None and rec.status == "running" and rec.launch == "cold"
    c = env.provider.by_session(sid)
    assert c is not None and c.spec is not None and c.spec.pool == ""


async def test_two_workers_racing_for_one_slot_exactly_one_wins(env: Env) -> None:
    _a, pool_a = await pooled(env, "w-a")
    _b, pool_b = await pooled(env, "w-b")
    slot = await pool_a.make(pool_a.targets[pool_key(wire())])
    assert slot is not None

    # Launches racing for the ready list: one gets the slot's id, the others nothing.
    claims = await asyncio.gather(*(pools(env).claim(slot.key) for _ in range(8)))
    assert [c for c in claims if c] == [slot.session_id]

    # Two workers handling that launch (a redelivery) race to take the slot: one wins.
    taken = await asyncio.gather(pool_a.take(slot.session_id), pool_b.take(slot.session_id))
    winners = [t for t in taken if t is not None]
    assert len(winners) == 1 and winners[0].container_id == slot.container_id
    assert slot.container_id in env.provider.containers


async def test_a_worker_without_a_pool_of_its_own_takes_a_slot_another_made(env: Env) -> None:
    _a, pool_a = await pooled(env, "w-a")
    slot = await pool_a.make(pool_a.targets[pool_key(wire())])
    assert slot is not None
    unpooled = await env.worker("w-b")  # AGC_POOL_CONFIGS empty: it makes no slots
    sid, claimed = await launch_as_api(env, unpooled)
    assert claimed and sid == slot.session_id
    rec = await env.store.get(sid)
    assert rec is not None and rec.status == "running" and rec.launch == "warm"
    assert unpooled.registry.sessions[sid].container_id == slot.container_id


async def test_a_slot_whose_runner_died_while_waiting_is_discarded(env: Env) -> None:
    _w, pool = await pooled(env, "w-a")
    target = pool.targets[pool_key(wire())]
    slot = await pool.make(target)
    assert slot is not None
    env.provider.crash(slot.container_id)
    await pool.sweep()
    assert slot.container_id not in env.provider.containers
    assert await pools(env).ready_count(slot.key) == 0 and pool.ready == 0
    # The pool refills.
    assert await pool.fill_one()
    assert pool.ready == 1 and await pools(env).ready_count(slot.key) == 1


async def test_a_claimed_slot_found_dead_falls_back_to_a_cold_launch(env: Env) -> None:
    w, pool = await pooled(env, "w-a")
    slot = await pool.make(pool.targets[pool_key(wire())])
    assert slot is not None
    # Its runner dies after the API claimed it and before the worker binds it.
    env.provider.crash(slot.container_id)
    sid, claimed = await launch_as_api(env, w)
    assert claimed and sid == slot.session_id
    rec = await env.store.get(sid)
    assert rec is not None and rec.status == "running" and rec.launch == "cold"
    assert rec.container_id != slot.container_id
    assert slot.container_id not in env.provider.containers
    assert w.metrics.pool_claims.labels("dead")._value.get() == 1


async def test_an_image_rebuild_invalidates_slots(env: Env) -> None:
    w, pool = await pooled(env, "w-a")
    target = pool.targets[pool_key(wire())]
    ready = await pool.make(target)
    claimed = await pool.make(target)
    assert ready is not None and claimed is not None
    assert (await pools(env).claim(target.key)) == ready.session_id
    env.provider.image_ids[w.settings.agent_image] = "sha256:rebuilt"

    # A ready slot of the old image is remade...
    await pool.sweep()
    assert claimed.container_id not in env.provider.containers
    assert pool.ready == 0
    # ...and one a launch already claimed is not used: that launch goes cold.
    assert await pool.take(ready.session_id) is None
    assert ready.container_id not in env.provider.containers
    assert await pool.fill_one()
    fresh = next(iter(pool.slots.values()))
    assert fresh.image_id == "sha256:rebuilt"


async def test_a_config_change_invalidates_slots(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    _w, pool = await pooled(env, "w-a")
    old = await pool.make(pool.targets[pool_key(wire())])
    assert old is not None

    presets = dict(load_presets())
    edited = presets[PRESET].model_copy(update={"max_turns": 7})
    presets[PRESET] = edited
    monkeypatch.setattr("workers.pool.load_presets", lambda: presets)
    pool.load_targets()
    new_key = pool_key(edited.to_wire())
    assert new_key != old.key and list(pool.targets) == [new_key]

    await pool.sweep()
    assert old.container_id not in env.provider.containers
    assert await pools(env).ready_count(old.key) == 0
    assert await pool.fill_one()
    (slot,) = pool.slots.values()
    assert slot.key == new_key
    c = env.provider.containers[slot.container_id]
    assert c.runner is not None and c.runner.prestarted is not None
    assert c.runner.prestarted.config["max_turns"] == 7


async def test_reconcile_leaves_ready_slots_to_the_pool_and_drain_removes_them(env: Env) -> None:
    a, pool = await pooled(env, "w-a", size=2)
    assert await pool.fill_one() and await pool.fill_one()
    assert not await pool.fill_one()  # full
    slots = list(pool.slots.values())
    other = await env.worker("w-b")
    await other.reconciler.reconcile()
    await a.reconciler.reconcile()
    assert all(s.container_id in env.provider.containers for s in slots)

    await a.shutdown()
    env.workers.remove(a)
    assert all(s.container_id not in env.provider.containers for s in slots)
    assert await pools(env).slots_of("w-a") == []
    assert await pools(env).ready_count(slots[0].key) == 0


async def test_a_dead_workers_slots_are_removed_by_another_worker(env: Env) -> None:
    a, pool_a = await pooled(env, "w-a")
    slot = await pool_a.make(pool_a.targets[pool_key(wire())])
    assert slot is not None
    await env.crash(a)
    await a.registry.sandbox.aclose()  # its sockets die with the process
    _b, pool_b = await pooled(env, "w-b")
    await until(lambda: _dead(env, "w-a"))
    await pool_b.sweep()
    assert slot.container_id not in env.provider.containers
    assert await pools(env).ready_count(slot.key) == 0


async def test_the_pool_refills_in_the_background_and_reports_itself(env: Env) -> None:
    w = await env.worker("w-a", loops=True, pool_size=2, pool_configs=PRESET, pool_pause=0.01)
    pool = w.registry.pool
    assert pool is not None
    await until(lambda: pool.ready == 2)
    workers = await env.store.live_workers()
    await until(lambda: _heartbeat_shows(env, "w-a", 2))
    assert workers
    _sid, claimed = await launch_as_api(env, w)
    assert claimed
    await until(lambda: pool.ready == 2)  # refilled behind the launch
    assert w.metrics.pool_ready._value.get() == 2
    assert w.metrics.pool_claims.labels("hit")._value.get() == 1


async def _heartbeat_shows(env: Env, wid: str, ready: int) -> bool:
    info = (await env.store.live_workers()).get(wid)
    return info is not None and info.pool_ready == ready and info.pool_size == 2


async def _dead(env: Env, worker_id: str) -> bool:
    return not await env.store.is_alive(worker_id)


def test_pool_keys_follow_the_whole_config() -> None:
    a = wire()
    assert pool_key(a) == pool_key(dict(reversed(list(a.items()))))
    assert pool_key(a).startswith(f"{PRESET}@")
    assert pool_key({**a, "max_turns": 3}) != pool_key(a)
    assert SlotRecord.__struct_fields__[0] == "session_id"


async def test_a_restarted_worker_removes_the_slots_it_left_and_makes_new_ones(env: Env) -> None:
    a, pool_a = await pooled(env, "w-a")
    old = await pool_a.make(pool_a.targets[pool_key(wire())])
    assert old is not None
    await env.crash(a)
    await a.registry.sandbox.aclose()  # its sockets die with the process
    # The same worker id starts again: slots are not adopted (nobody holds their sandbox's
    # sockets any more); they are removed and the pool refills.
    again = await env.worker("w-a", loops=True, pool_size=1, pool_configs=PRESET, pool_pause=0.01)
    pool = again.registry.pool
    assert isinstance(pool, WarmPool)
    await until(lambda: pool.ready == 1)
    assert old.container_id not in env.provider.containers
    (fresh,) = pool.slots.values()
    assert fresh.session_id != old.session_id
    assert await pools(env).slots_of("w-a") == [fresh.session_id]


async def test_a_warm_launch_never_waits_behind_cold_ones(env: Env) -> None:
    """A burst through the real work queue: cold launches fill every launch turn and hang in
    their container's creation; the warm launch published after them is running anyway, and
    the pool refills once the cold launches are done."""
    w = await env.worker(
        "w-a", loops=True, pool_size=1, pool_configs=PRESET, pool_pause=0.01, launch_concurrency=2
    )
    pool = w.registry.pool
    assert isinstance(pool, WarmPool)
    await until(lambda: pool.ready == 1)
    release = asyncio.Event()
    creating: list[str] = []
    create = env.provider.create

    async def slow_cold_create(spec: Any) -> str:
        if not spec.pool:  # a session's own container, not a slot's
            creating.append(spec.session_id)
            await release.wait()
        return await create(spec)

    env.provider.create = slow_cold_create  # type: ignore[method-assign]

    async def publish(sid: str) -> None:
        await env.store.save_config(sid, msgspec.json.encode(wire()))
        rec = await env.store.get(sid)
        assert rec is not None
        cmd = Launch(
            session_id=sid,
            agent_id="agent-x",
            config_id=PRESET,
            config=wire(),
            sealed_api_key=rec.sealed_api_key,
        )
        await w.registry.js.publish(
            subjects.LAUNCH, encode_command(cmd), headers={"Nats-Msg-Id": sid}
        )

    cold = [await env.record() for _ in range(4)]
    try:
        for sid in cold:
            await publish(sid)
        # Both turns taken by cold launches, two more waiting behind them.
        await until(lambda: len(creating) == 2)
        claimed = await pools(env).claim(pool_key(wire()))
        assert claimed is not None
        await env.record(claimed)
        await publish(claimed)
        await until(lambda: "session.ready" in env.types(claimed))
        rec = await env.store.get(claimed)
        assert rec is not None and rec.status == "running" and rec.launch == "warm"
        # Meanwhile no cold launch got further, and none jumped the turns.
        assert len(creating) == 2
        assert [await env.status(sid) for sid in cold] == ["starting"] * 4
        # The pool's refill waits for the cold launches somebody waits for.
        assert w.registry.cold_launches == 4
        assert not await pool.fill_one() and pool.ready == 0
    finally:
        release.set()

    async def all_running() -> bool:
        return [await env.status(sid) for sid in cold] == ["running"] * 4

    await until(all_running)
    for sid in cold:
        rec = await env.store.get(sid)
        assert rec is not None and rec.status == "running" and rec.launch == "cold"
    # Then it refills.
    await until(lambda: pool.ready == 1)
    assert w.registry.cold_launches == 0
