"""The approval routes against real NATS and Redis (no Docker, no worker): claims and checks.

Applying an answer needs the owning worker and runner: tests/e2e/test_approvals.py covers that.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from agcluster.procs import Service
from api.agents import approvals
from api.app import create_app
from broker import subjects
from broker.approvals import ApprovalStore
from broker.commands import Approve, decode_command
from broker.events import ApprovalRequested, encode_event
from broker.sealing import Sealer
from broker.state import SessionRecord, SessionStore
from tests.support.api_server import api_settings

KEY = "sk-ant-approvals-owner"


@pytest.fixture
async def client(
    nats_server: Service, redis_server: Service, tmp_path: Path, secret_key: str
) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = api_settings(nats_server.url, redis_server.url, secret_key, tmp_path)
    async with AsyncTestClient(app=create_app(settings)) as c:
        yield c


@pytest.fixture
async def session(redis: Redis, secret_key: str) -> str:
    sid = f"conv-{uuid.uuid4().hex}"
    await SessionStore(redis).create(
        SessionRecord(
            session_id=sid,
            agent_id="agent-1",
            config_id="c",
            status="waiting",
            key_hash=Sealer(secret_key).key_hash(KEY),
        )
    )
    return sid


async def pending_request(redis: Redis, sid: str) -> str:
    rid = f"apr-{uuid.uuid4().hex[:16]}"
    event = ApprovalRequested(
        session_id=sid, turn_id="t1", request_id=rid, tool="Bash", input={"command": "ls"}
    )
    await ApprovalStore(redis).requested(sid, rid, encode_event(event))
    return rid


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_concurrent_answers_one_gets_through_the_rest_conflict(
    client: AsyncTestClient[Any], redis: Redis, session: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(approvals, "APPLY_WAIT", 0.5)  # no worker here: the winner is queued
    rid = await pending_request(redis, session)
    other = await pending_request(redis, session)
    await ApprovalStore(redis).grant(session, "Write")  # an earlier "allow for the session"
    listed = (await client.get(f"/api/agents/{session}/approvals", headers=auth())).json()
    assert listed["total"] == 2 and listed["grants"] == ["Write"]
    assert {a["request_id"] for a in listed["approvals"]} == {rid, other}
    assert listed["approvals"][0]["type"] == "approval.requested"
    answers = await asyncio.gather(
        *(
            client.post(
                f"/api/agents/{session}/approvals/{rid}",
                headers=auth(),
                json={"decision": "allow", "scope": "session", "name": f"person {i}"},
            )
            for i in range(6)
        )
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [202, 409, 409, 409, 409, 409], [a.text for a in answers]
    won = next(a.json() for a in answers if a.status_code == 202)
    assert won["status"] == "queued" and won["decided_by"].startswith("key:")
    assert KEY not in str(won)


async def test_queued_when_no_owner_answers_and_a_second_answer_conflicts(
    client: AsyncTestClient[Any],
    redis: Redis,
    session: str,
    nats_server: Service,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(approvals, "APPLY_WAIT", 0.5)
    rid = await pending_request(redis, session)
    r = await client.post(
        f"/api/agents/{session}/approvals/{rid}",
        headers=auth(),
        json={"decision": "allow", "scope": "session"},
    )
    assert r.status_code == 202 and r.json()["status"] == "queued", r.text
    # no worker answered the direct request: the answer waits in JetStream for the next owner,
    # naming the claimed request's tool (what the session-scoped allow grants)
    nc = await nats.connect(nats_server.url)
    try:
        stored = await nc.jetstream().get_last_msg(
            subjects.CMD_STREAM, subjects.session_cmd(session, "approve")
        )
    finally:
        await nc.close()
    command = decode_command(stored.data or b"")
    assert isinstance(command, Approve)
    assert command.tool == "Bash" and command.answer.request_id == rid
    assert (command.answer.decision, command.answer.scope) == ("allow", "session")
    assert command.answer.answer_id == r.json()["answer_id"]
    again = await client.post(
        f"/api/agents/{session}/approvals/{rid}", headers=auth(), json={"decision": "allow"}
    )
    assert again.status_code == 409 and again.json()["error"] == "conflict"


async def test_only_the_sessions_key_and_well_formed_answers_get_through(
    client: AsyncTestClient[Any], redis: Redis, session: str
) -> None:
    rid = await pending_request(redis, session)
    url = f"/api/agents/{session}/approvals/{rid}"
    assert (await client.get(f"/api/agents/{session}/approvals")).status_code == 401
    assert (await client.post(url, json={"decision": "allow"})).status_code == 401
    stranger = auth("sk-ant-someone-else")
    r = await client.post(url, headers=stranger, json={"decision": "allow"})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert (
        await client.get(f"/api/agents/{session}/approvals", headers=stranger)
    ).status_code == 403
    missing = "/api/agents/conv-0123456789abcdef/approvals"
    assert (await client.get(missing, headers=auth())).status_code == 404
    bad: Any
    for bad in (
        {"decision": "maybe"},
        {"decision": "deny", "updated_input": {"command": "x"}},
        {"decision": "allow", "scope": "forever"},
        {"decision": "allow", "message": "x" * 10_001},
        {"decision": "allow", "name": "\u0000bell"},
        {"decision": "allow", "surprise": True},
        [],
    ):
        r = await client.post(url, headers=auth(), json=bad)
        assert r.status_code == 400 and r.json()["status_code"] == 400, (bad, r.text)
    for unknown in ("apr-0000000000000000", "not-an-id", "apr-..%2F..%2Fx"):
        r = await client.post(
            f"/api/agents/{session}/approvals/{unknown}", headers=auth(), json={"decision": "allow"}
        )
        assert r.status_code == 404, (unknown, r.text)
    # none of that claimed the request: it is still there to answer
    listed = (await client.get(f"/api/agents/{session}/approvals", headers=auth())).json()
    assert [a["request_id"] for a in listed["approvals"]] == [rid]
    assert (
        msgspec.json.decode(await redis.hget(f"agc:approvals:{session}", rid) or b"{}")["tool"]
        == "Bash"
    )
