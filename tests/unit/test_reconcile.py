"""Claim, reconcile, recovery and the reaper, fast: real NATS and Redis, containers in memory.

The workers here are the real ``workers`` parts; only their provider is
``tests.support.memory_provider.MemoryProvider``, whose containers run in-process fake
runners speaking the real stdio protocol. Reconcile is called by hand on assembled workers
(no maintenance loop), so each test decides exactly when a pass happens.
"""

from __future__ import annotations

import time
import uuid

import msgspec

from broker import subjects
from broker.commands import Stop, encode_command
from broker.events import decode_event, event_type
from broker.runner_wire import Attach, Envelope, Init, encode_line
from tests.support.memory_provider import MemoryProvider
from tests.support.wait import until
from tests.support.worker_env import Env


def runner_inits(provider: MemoryProvider, sid: str) -> list[Init]:
    c = provider.by_session(sid)
    assert c is not None and c.runner is not None
    return [c.runner.init] if c.runner.init else []


async def test_launch_relays_events_and_commands_reach_the_runner(env: Env) -> None:
    w = await env.worker("w-a")
    sid = await env.launch(w)
    assert sid in w.registry.sessions
    rec = await env.store.get(sid)
    assert rec is not None and rec.owner == "w-a" and rec.status == "running"
    c = env.provider.by_session(sid)
    assert c is not None and c.spec is not None and c.spec.pids_limit == 64
    assert c.runner is not None and c.runner.init is not None
    # The key stays in the worker's gateway: the runner gets only the sandbox's token.
    assert c.runner.init.api_key == "" and c.runner.init.gateway_token
    assert "sk-test" not in repr(c.spec) and "sk-test" not in repr(c.runner.init)
    assert c.spec.sandbox and c.spec.sandbox_dir.endswith(c.spec.sandbox)
    assert w.registry.sandbox.registry.binding(c.spec.sandbox) is not None

    await env.chat(sid, "hello")
    assert c.runner.chats == ["hello"]
    await until(lambda: _usage_recorded(env, sid))
    assert "session.ready" in env.types(sid) and "message" in env.types(sid)


async def _usage_recorded(env: Env, sid: str) -> bool:
    rec = await env.store.get(sid)
    # The fake runner reports 3 input tokens and $0.001 in its turn.completed: numbers from
    # inside a sandbox are never recorded (only the gateway's are), the turn is counted.
    return (
        rec is not None
        and rec.turns == 1
        and (rec.input_tokens, rec.cost_usd) == (0, 0.0)
        and rec.sdk_session_id == f"sdk-{sid}"
    )


async def test_a_dead_workers_session_is_adopted_and_a_live_owners_left_alone(env: Env) -> None:
    a = await env.worker("w-a", loops=True)
    b = await env.worker("w-b")
    sid = await env.launch(a)
    await env.chat(sid, "before")

    # A is alive: B leaves its session alone.
    await b.reconciler.reconcile()
    assert sid not in b.registry.sessions
    assert await env.owner(sid) == "w-a"

    await env.crash(a)
    await until(lambda: env.dead("w-a"))
    await b.reconciler.reconcile()
    assert sid in b.registry.sessions
    assert await env.owner(sid) == "w-b"
    c = env.provider.by_session(sid)
    assert c is not None and c.runners_started == 1  # re-attached, not restarted

    # The adopter asked the runner for what it may have missed, and commands now reach it.
    await env.chat(sid, "after")
    assert c.runner is not None and c.runner.chats == ["before", "after"]
    assert [e["type"] for e in env.events[sid]].count("session.ready") == 1


async def test_a_restarted_worker_reattaches_its_own_sessions(env: Env) -> None:
    a = await env.worker("w-a")
    sid = await env.launch(a)
    await env.chat(sid, "one")
    await env.shutdown(a)
    rec = await env.store.get(sid)
    assert rec is not None
    last_seq = rec.last_seq
    assert last_seq > 0

    a2 = await env.worker("w-a")
    await a2.reconciler.reconcile()
    assert sid in a2.registry.sessions
    c = env.provider.by_session(sid)
    assert c is not None and c.runners_started == 1
    # It asked the runner for everything after the last event it had published.
    assert c.runner is not None
    assert [x for x in c.runner.commands if isinstance(x, Attach)] == [Attach(after_seq=last_seq)]
    await env.chat(sid, "two")
    assert c.runner is not None and c.runner.chats == ["one", "two"]
    # No event was published twice although the runner replayed after the last stored seq.
    ids = [(e["type"], e.get("turn_id"), e["ts"]) for e in env.events[sid]]
    assert len(ids) == len(set(ids))


async def test_orphans_are_removed_but_other_clusters_containers_are_not(env: Env) -> None:
    w = await env.worker("w-a")
    no_record = env.provider.plant(f"conv-{uuid.uuid4().hex}", "w-gone", env.cluster)
    stopped_sid = await env.record(status="stopped", owner="w-gone")
    stopped = env.provider.plant(stopped_sid, "w-gone", env.cluster)
    foreign = env.provider.plant(f"conv-{uuid.uuid4().hex}", "w-other", "another-cluster")

    await w.reconciler.reconcile()
    assert no_record.container_id not in env.provider.containers
    assert stopped.container_id not in env.provider.containers
    assert foreign.container_id in env.provider.containers


async def test_a_launch_in_flight_is_never_adopted(env: Env) -> None:
    w = await env.worker("w-a")
    # The launcher made the container but has not recorded its owner yet, then died.
    sid_unowned = await env.record(status="starting")
    unowned = env.provider.plant(sid_unowned, "w-launching", env.cluster)
    # Or recorded an owner (now dead) while still starting.
    sid_starting = await env.record(status="starting", owner="w-dead")
    starting = env.provider.plant(sid_starting, "w-dead", env.cluster)

    await w.reconciler.reconcile()
    for sid, c in ((sid_unowned, unowned), (sid_starting, starting)):
        assert c.container_id in env.provider.containers
        assert sid not in w.registry.sessions
        assert await env.status(sid) == "starting"
    assert await env.owner(sid_starting) == "w-dead"


async def test_a_dead_owners_stop_is_finished(env: Env) -> None:
    w = await env.worker("w-a")
    sid = await env.record(status="stopping", owner="w-dead")
    c = env.provider.plant(sid, "w-dead", env.cluster)
    # A live owner's stop in progress is left alone.
    sid_live = await env.record(status="stopping", owner="w-a")
    live = env.provider.plant(sid_live, "w-a", env.cluster)

    await w.reconciler.reconcile()
    assert c.container_id not in env.provider.containers
    assert await env.status(sid) == "stopped"
    await until(lambda: "session.stopped" in env.types(sid))
    assert env.events[sid][-1]["reason"] == "owner_lost"
    assert live.container_id in env.provider.containers
    assert await env.status(sid_live) == "stopping"


async def test_idle_sessions_are_reaped_and_busy_ones_are_not(env: Env) -> None:
    w = await env.worker("w-a", AGC_SESSION_IDLE_TIMEOUT=0.3)
    idle = await env.launch(w)
    busy = await env.launch(w)
    await env.store.set_status(busy, "busy")
    await until(lambda: _older_than(env, idle, 0.3))
    await until(lambda: _older_than(env, busy, 0.3))

    await w.upkeep.reap_idle()
    await until(lambda: _status_is(env, idle, "stopped"))
    assert env.provider.by_session(idle) is None
    await until(lambda: "session.stopped" in env.types(idle))
    assert env.events[idle][-1]["reason"] == "idle_timeout"
    assert busy in w.registry.sessions and await env.status(busy) == "busy"


async def _older_than(env: Env, sid: str, seconds: float) -> bool:
    rec = await env.store.get(sid)
    return rec is not None and time.time() - rec.last_active >= seconds


async def _status_is(env: Env, sid: str, status: str) -> bool:
    return await env.status(sid) == status


async def test_a_session_whose_container_vanished_fails(env: Env) -> None:
    w = await env.worker("w-a")
    # Recorded as ours and running, but there is no container at all (the host lost it).
    sid = await env.record(status="running")
    await env.store.set_owner(sid, "w-a", "gone-container")

    await w.reconciler.reconcile()
    assert await env.status(sid) == "failed"
    await until(lambda: env.types(sid)[-2:] == ["error", "session.stopped"])
    assert env.events[sid][-2]["code"] == "container_lost"


async def test_a_container_vanishing_under_a_live_session_fails_it(env: Env) -> None:
    w = await env.worker("w-a")
    sid = await env.launch(w)
    c = env.provider.by_session(sid)
    assert c is not None
    env.provider.vanish(c.container_id)
    await until(lambda: _status_is(env, sid, "failed"))
    await until(lambda: "session.stopped" in env.types(sid))
    assert [e for e in env.events[sid] if e["type"] == "error"][-1]["code"] == "runner_lost"
    assert sid not in w.registry.sessions


async def test_a_crashed_runner_is_restarted_with_its_conversation(env: Env) -> None:
    w = await env.worker("w-a")
    sid = await env.launch(w)
    await env.chat(sid, "remember me")
    await until(lambda: _usage_recorded(env, sid))
    c = env.provider.by_session(sid)
    assert c is not None
    env.provider.crash(c.container_id)

    await until(lambda: c.runners_started == 2 and sid in w.registry.sessions)
    await until(lambda: [i.resume for i in runner_inits(env.provider, sid)] == [f"sdk-{sid}"])
    await env.chat(sid, "still there?")
    assert c.runner is not None and c.runner.chats == ["still there?"]
    assert await env.status(sid) == "idle"


async def test_a_stop_command_removes_the_container_and_ends_the_stream(env: Env) -> None:
    w = await env.worker("w-a")
    sid = await env.launch(w)
    await env.nc.jetstream().publish(
        subjects.session_cmd(sid, "stop"), encode_command(Stop(session_id=sid, reason="deleted"))
    )
    await until(lambda: _status_is(env, sid, "stopped"))
    await until(lambda: "session.stopped" in env.types(sid))
    stopped = [e for e in env.events[sid] if e["type"] == "session.stopped"]
    # The runner's own session.stopped is swallowed; the worker's comes once everything is gone.
    assert len(stopped) == 1 and stopped[0]["reason"] == "deleted"
    assert env.provider.by_session(sid) is None
    assert sid in env.provider.removed
    assert event_type(decode_event(msgspec.json.encode(stopped[0]))) == "session.stopped"


async def test_a_malformed_known_event_is_rejected_and_the_relay_goes_on(env: Env) -> None:
    # A turn.completed whose sdk_session_id is a number: nothing downstream could read it. It
    # is not published (an error says so) and the session keeps relaying; the worker's typed
    # decode once let it end the relay instead.
    w = await env.worker("w-a")
    sid = await env.launch(w)
    c = env.provider.by_session(sid)
    assert c is not None and c.runner is not None
    runner = c.runner
    bad = msgspec.json.encode(
        {"type": "turn.completed", "session_id": sid, "turn_id": "t-bad", "sdk_session_id": 5}
    )
    runner.emitter._seq += 1  # the fake runner writes one line by hand, in sequence
    runner.sink.write(
        encode_line(
            Envelope(
                seq=runner.emitter._seq, event=msgspec.Raw(bad), boot_id=runner.emitter.boot_id
            )
        )
    )
    await until(
        lambda: any(
            e["type"] == "error" and e.get("code") == "rejected_event" for e in env.events[sid]
        )
    )
    assert not any(e.get("turn_id") == "t-bad" for e in env.events[sid])
    await env.chat(sid, "still there?")
    assert runner.chats == ["still there?"]
