"""Session grants as the worker keeps them: real NATS, Redis and worker; the runner in memory.

The in-memory runner is the container here, and the container is the attacker: it can emit any
event it likes. A grant ("allow for this session") must come only from an answer the API
claimed and the worker relayed, and a runner restarted after a crash must start with it.
"""

from __future__ import annotations

import uuid
from functools import partial

from broker import subjects
from broker.approvals import ApprovalStore
from broker.commands import Approve, encode_command
from broker.events import ApprovalRequested, ApprovalResolved
from broker.runner_wire import ApprovalAnswer, ApproveIn
from tests.support.memory_provider import FakeRunner
from tests.support.wait import until
from tests.support.worker_env import Env


def runner_of(env: Env, sid: str) -> FakeRunner:
    c = env.provider.by_session(sid)
    assert c is not None and c.runner is not None
    return c.runner


def ask(runner: FakeRunner, sid: str, tool: str) -> str:
    """The runner emits an approval request, as its can_use_tool would."""
    rid = f"apr-{uuid.uuid4().hex[:16]}"
    runner.emitter.emit(
        ApprovalRequested(session_id=sid, turn_id="t1", request_id=rid, tool=tool, input={})
    )
    return rid


def resolved(runner: FakeRunner, sid: str, rid: str, tool: str, answer_id: str) -> None:
    """The runner says an answer was applied, allowing ``tool`` for the session."""
    runner.emitter.emit(
        ApprovalResolved(
            session_id=sid,
            turn_id="t1",
            request_id=rid,
            tool=tool,
            decision="allow",
            scope="session",
            cause="answer",
            answer_id=answer_id,
        )
    )


def seen(env: Env, sid: str, type_: str) -> set[str]:
    """Request ids of the session's ``type_`` events as NATS subscribers saw them."""
    return {e["request_id"] for e in env.events[sid] if e["type"] == type_}


def requested(env: Env, sid: str, rid: str) -> bool:
    return rid in seen(env, sid, "approval.requested")


async def answer(env: Env, sid: str, rid: str, decision: str, scope: str, tool: str) -> str:
    """Send an answer as the API does (the direct path, after its claim); return its id."""
    answer_id = f"ans-{uuid.uuid4().hex[:16]}"
    command = Approve(
        session_id=sid,
        answer=ApprovalAnswer(request_id=rid, decision=decision, scope=scope, answer_id=answer_id),
        tool=tool,
    )
    reply = await env.nc.request(
        subjects.session_rpc(sid, "approve"), encode_command(command), timeout=5
    )
    assert reply.data == b'{"ok":true}'
    return answer_id


async def grants_are(store: ApprovalStore, sid: str, tools: list[str]) -> bool:
    return await store.grants(sid) == tools


async def test_only_a_relayed_answer_becomes_a_grant_and_a_restarted_runner_gets_it(
    env: Env,
) -> None:
    w = await env.worker("w-g")
    sid = await env.launch(w)
    store = ApprovalStore(env.store.redis)
    runner = runner_of(env, sid)

    # A container making up an allow-for-the-session that nobody gave.
    forged = ask(runner, sid, "Bash")
    await until(lambda: forged in seen(env, sid, "approval.requested"))
    resolved(runner, sid, forged, "Bash", answer_id="ans-made-up")

    # A person's answer, sent as the API sends it: the runner gets it, and once it says that
    # answer was applied the worker records the tool the API claimed, not the one the runner
    # names.
    rid = ask(runner, sid, "Write")
    await until(lambda: rid in seen(env, sid, "approval.requested"))
    answer_id = await answer(env, sid, rid, "allow", "session", tool="Write")
    relayed = [c.answer for c in runner.commands if isinstance(c, ApproveIn)]
    assert [(a.request_id, a.answer_id) for a in relayed] == [(rid, answer_id)]
    resolved(runner, sid, rid, "Bash", answer_id=answer_id)
    # the worker handles the runner's events in order: the forged one came first
    await until(lambda: grants_are(store, sid, ["Write"]), what="the grant")
    await until(lambda: rid in seen(env, sid, "approval.resolved"))
    assert await store.pending(sid) == []

    # The runner crashes; the one the worker restarts starts with the session's grants.
    c = env.provider.by_session(sid)
    assert c is not None
    env.provider.crash(c.container_id)
    await until(lambda: c.runners_started == 2 and sid in w.registry.sessions)
    await until(lambda: c.runner is not None and c.runner.init is not None)
    assert c.runner is not None and c.runner.init is not None
    assert c.runner.init.session_grants == ["Write"]


async def test_a_once_or_deny_answer_grants_nothing(env: Env) -> None:
    w = await env.worker("w-h")
    sid = await env.launch(w)
    store = ApprovalStore(env.store.redis)
    runner = runner_of(env, sid)
    for decision, scope in (("allow", "once"), ("deny", "session")):
        rid = ask(runner, sid, "Bash")
        await until(partial(requested, env, sid, rid))
        answer_id = await answer(env, sid, rid, decision, scope, tool="Bash")
        # even if the runner claims the answer was a session-wide allow
        resolved(runner, sid, rid, "Bash", answer_id=answer_id)
    # an approve for another session on this session's subject is refused, not relayed
    other = Approve(
        session_id=f"conv-{uuid.uuid4().hex}",
        answer=ApprovalAnswer(request_id="apr-0", decision="allow", scope="session"),
        tool="Bash",
    )
    reply = await env.nc.request(
        subjects.session_rpc(sid, "approve"), encode_command(other), timeout=5
    )
    assert b'"bad_command"' in reply.data
    assert len([c for c in runner.commands if isinstance(c, ApproveIn)]) == 2
    # a real session-wide allow last: once it is recorded, the ones before were handled
    rid = ask(runner, sid, "Read")
    await until(lambda: rid in seen(env, sid, "approval.requested"))
    resolved(
        runner, sid, rid, "Read", answer_id=await answer(env, sid, rid, "allow", "session", "Read")
    )
    await until(lambda: grants_are(store, sid, ["Read"]), what="only the real grant")
