"""A lost host, fast: two "hosts" are two in-memory providers (each sees only its own
containers), the workers are the real ``workers`` parts on real NATS and Redis.

A worker dies with its host: no live worker can see its containers, so nobody adopts its
sessions, and after ``AGC_LOST_HOST_TIMEOUT`` the next reconcile pass ends them with the reason.
A dead worker whose containers a live worker *can* see is adopted, never ended.
"""

from __future__ import annotations

import uuid

import pytest
from nats.js.errors import NotFoundError

from broker import subjects
from broker.state import SessionRecord
from tests.support.wait import until
from tests.support.worker_env import Env


async def test_sessions_of_a_lost_host_end_with_the_reason_once_nobody_could_adopt_them(
    env: Env,
) -> None:
    far, near = env.host(), env.host()
    a = await env.worker("w-far", far)
    sid = await env.launch(a)
    # A launch in flight on the lost host: its command would be redelivered, so it stays.
    launching = f"conv-{uuid.uuid4().hex}"
    await env.store.create(
        SessionRecord(session_id=launching, agent_id="x", config_id="fake", status="starting")
    )
    await env.store.set_owner(launching, "w-far")

    await env.crash(a)
    queued = await env.send(sid, "anyone there?")  # waits in JetStream for the lost owner
    b = await env.worker("w-near", near, lost_host_timeout=1.0)
    await until(lambda: env.dead("w-far"), 10, "the lost worker's liveness to lapse")

    # First pass: B cannot see the container, so it cannot adopt; the count starts now.
    await b.reconciler.reconcile()
    assert await env.status(sid) == "running"
    assert sid not in b.registry.sessions

    await until(lambda: _lost_for(env, "w-far", 1.0), 10, "the timeout to pass")
    await b.reconciler.reconcile()
    assert await env.status(sid) == "failed"
    rec = await env.store.get(sid)
    assert rec is not None and "w-far" in rec.error and "lost" in rec.error
    await until(lambda: "session.stopped" in env.types(sid), 10, "session.stopped")
    tail = env.events[sid][-3:]
    assert [(e["type"], e.get("turn_id"), e.get("code")) for e in tail] == [
        ("error", queued, "host_lost"),  # the chat that never ran
        ("error", None, "host_lost"),  # the session
        ("session.stopped", None, None),
    ]
    assert tail[1]["fatal"] is True and tail[2]["reason"] == "failed"
    # Nothing of it is left to consume; the launch in flight is untouched.
    js = env.nc.jetstream()
    with pytest.raises(NotFoundError):
        await js.get_last_msg(subjects.CMD_STREAM, subjects.session_cmd(sid, "chat"))
    with pytest.raises(NotFoundError):
        await js.consumer_info(subjects.CMD_STREAM, subjects.session_consumer(sid))
    assert await env.status(launching) == "starting"

    # Once: the next pass (or another worker) finds nothing more to do.
    c = await env.worker("w-other", env.host(), lost_host_timeout=1.0)
    await b.reconciler.reconcile()
    await c.reconciler.reconcile()
    assert env.types(sid).count("session.stopped") == 1


async def test_a_dead_workers_session_on_a_reachable_host_is_adopted_never_ended(
    env: Env,
) -> None:
    shared = env.host()
    a = await env.worker("w-a", shared)
    sid = await env.launch(a)
    await env.crash(a)
    # Even with no grace at all, adoption comes first in the pass.
    b = await env.worker("w-b", shared, lost_host_timeout=0.0)
    await until(lambda: env.dead("w-a"), 10, "the dead worker's liveness to lapse")
    await b.reconciler.reconcile()
    await b.reconciler.reconcile()
    assert sid in b.registry.sessions
    rec = await env.store.get(sid)
    assert rec is not None and rec.owner == "w-b" and rec.status not in ("failed", "stopped")
    assert "session.stopped" not in env.types(sid)
    # And it works: a chat reaches its runner through the adopter.
    await env.chat(sid, "still here")


async def _lost_for(env: Env, wid: str, seconds: float) -> bool:
    return await env.store.dead_for(wid) >= seconds
