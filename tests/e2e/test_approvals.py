"""A person in the loop, end to end: the real API, NATS, Redis, worker, container, SDK and CLI.

A config's ask rule makes the agent's call wait; the request is listed over the API, shown on
the session's streams, answered with the session's key (once), and applied by the runner.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from broker import subjects
from tests.e2e.test_lifecycle import kill_runner, session_info
from tests.modelserver.script import ToolUseBlock, text, tool_use
from tests.modelserver.server import ModelServer
from tests.support.sse import Sse
from tests.support.stack import Stack, running_stack
from tests.support.wait import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

CONFIG: dict[str, Any] = {
    "id": "approver",
    "name": "Asks before echo",
    "allowed_tools": ["Bash", "Read", "Write"],
    "permission_mode": "acceptEdits",
    "permissions": {"ask": ["Bash(echo:*)"]},
}


def key() -> str:
    return f"sk-test-{uuid.uuid4().hex}"


def bash(command: str) -> ToolUseBlock:
    return tool_use("Bash", {"command": command, "description": "scripted"})


def launch(stack: Stack, api_key: str) -> str:
    with stack.client() as c:
        r = c.post("/api/agents/launch", json={"api_key": api_key, "config": CONFIG})
    assert r.status_code == 200, r.text
    return str(r.json()["session_id"])


def pending(stack: Stack, sid: str, api_key: str) -> list[dict[str, Any]]:
    with stack.client(api_key, timeout=10) as c:
        r = c.get(f"/api/agents/{sid}/approvals")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == len(body["approvals"])
    return list(body["approvals"])


def next_request(stack: Stack, sid: str, api_key: str, seen: set[str]) -> dict[str, Any]:
    def fresh() -> dict[str, Any] | None:
        return next((p for p in pending(stack, sid, api_key) if p["request_id"] not in seen), None)

    found: dict[str, Any] = wait_until(fresh, 90, "a pending approval")
    seen.add(found["request_id"])
    return found


def answer(stack: Stack, sid: str, api_key: str, rid: str, **body: Any) -> httpx.Response:
    with stack.client(api_key, timeout=60) as c:
        return c.post(f"/api/agents/{sid}/approvals/{rid}", json=body)


def chat_in_background(stack: Stack, sid: str, api_key: str, message: str) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def run() -> None:
        out["events"] = stack.chat_sse(sid, api_key, message)

    out["thread"] = threading.Thread(target=run, daemon=True)
    out["thread"].start()
    return out


def finished(chat: dict[str, Any]) -> list[Sse]:
    chat["thread"].join(120)
    assert not chat["thread"].is_alive(), "the chat did not finish"
    events: list[Sse] = chat["events"]
    return events


async def stored_events(stack: Stack, sid: str) -> list[dict[str, Any]]:
    """Every event of the session as a plain nats-py JetStream subscriber reads it."""
    assert stack.nats is not None
    nc = await nats.connect(stack.nats.url)
    try:
        sub = await nc.jetstream().subscribe(subjects.events(sid), ordered_consumer=True)
        out: list[dict[str, Any]] = []
        while True:
            try:
                msg = await sub.next_msg(timeout=2.0)
            except TimeoutError:
                return out
            out.append(json.loads(msg.data))
    finally:
        await nc.close()


async def commands_published(stack: Stack) -> int:
    """How many commands JetStream's command stream has taken so far (its last sequence)."""
    assert stack.nats is not None
    nc = await nats.connect(stack.nats.url)
    try:
        return int((await nc.jetstream().stream_info(subjects.CMD_STREAM)).state.last_seq)
    finally:
        await nc.close()


def test_a_person_allows_and_denies_calls_over_the_api(stack: Stack) -> None:
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    api_key = key()
    sid = launch(stack, api_key)
    name = f"appr-{sid}"
    marker = model.add_script(
        name, [[bash("echo ran-after-approval")], [bash("echo never-runs")], [text("done")]]
    )
    chat = chat_in_background(stack, sid, api_key, f"go {marker}")
    seen: set[str] = set()
    first = next_request(stack, sid, api_key, seen)
    assert first["type"] == "approval.requested"
    assert first["tool"] == "Bash" and first["input"]["command"] == "echo ran-after-approval"
    assert first["reason_kind"] == "rule"

    # the session says it waits, alone and in its owner's list
    assert session_info(stack, sid, api_key)["status"] == "waiting"
    with stack.client(api_key) as c:
        mine = {s["session_id"]: s for s in c.get("/api/agents/sessions").json()["sessions"]}
    assert mine[sid]["status"] == "waiting"

    # only the session's key sees or answers it: 401 without, 403 with another (as every route)
    rid = first["request_id"]
    routes = [
        ("GET", f"/api/agents/{sid}/approvals", None),
        ("POST", f"/api/agents/{sid}/approvals/{rid}", {"decision": "allow"}),
    ]
    with stack.client() as anon, stack.client(key()) as other:
        for method, path, body in routes:
            assert anon.request(method, path, json=body).status_code == 401, path
            r = other.request(method, path, json=body)
            assert r.status_code == 403 and r.json()["error"] == "forbidden", path
        assert other.get("/api/agents/conv-0123456789abcdef/approvals").status_code == 404
    # bad answers are clear client errors and claim nothing
    bad_answers: list[tuple[dict[str, Any], int]] = [
        ({"decision": "maybe"}, 400),
        ({"decision": "deny", "updated_input": {"command": "ls"}}, 400),
        ({"decision": "allow", "scope": "forever"}, 400),
        ({"decision": "allow", "extra": 1}, 400),
    ]
    for bad, status in bad_answers:
        r = answer(stack, sid, api_key, rid, **bad)
        assert r.status_code == status and r.json()["status_code"] == status, (bad, r.text)
    assert answer(stack, sid, api_key, "apr-0000000000000000", decision="allow").status_code == 404

    r = answer(stack, sid, api_key, rid, decision="allow", name="alice")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "applied" and r.json()["decided_by"].startswith("key:")
    again = answer(stack, sid, api_key, rid, decision="deny")
    assert again.status_code == 409 and again.json()["error"] == "conflict"

    second = next_request(stack, sid, api_key, seen)
    assert second["input"]["command"] == "echo never-runs"
    r = answer(stack, sid, api_key, second["request_id"], decision="deny", message="use staging")
    assert r.status_code == 200, r.text

    events = finished(chat)
    kinds = [e.event for e in events]
    assert kinds.count("approval.requested") == 2 and kinds.count("approval.resolved") == 2
    outputs = [
        (e.data["output"], e.data["is_error"]) for e in events if e.event == "tool.completed"
    ]
    assert outputs[0] == ("ran-after-approval", False)
    assert outputs[1][1] is True and "use staging" in outputs[1][0]
    assert "use staging" in model.requests_for(name)[2].all_text
    assert pending(stack, sid, api_key) == []
    assert wait_until(
        lambda: session_info(stack, sid, api_key)["status"] == "idle", 30, "idle again"
    )

    # direct NATS subscribers see them like any other event
    on_nats = asyncio.run(stored_events(stack, sid))
    requested = [e["request_id"] for e in on_nats if e["type"] == "approval.requested"]
    resolved = [
        (e["request_id"], e["decision"]) for e in on_nats if e["type"] == "approval.resolved"
    ]
    assert requested == [rid, second["request_id"]]
    assert resolved == [(rid, "allow"), (second["request_id"], "deny")]

    with stack.client(api_key) as c:
        turn = c.get(f"/api/agents/{sid}/history").json()["turns"][-1]
        md = c.get(f"/api/agents/{sid}/history", params={"format": "markdown"}).text
    decided = [(a["decision"], a["decided_by_name"], a["message"]) for a in turn["approvals"]]
    assert decided == [("allow", "alice", ""), ("deny", "", "use staging")]
    assert turn["approvals"][0]["decided_by"] == r.json()["decided_by"]
    assert f"`Bash` — allowed by alice ({r.json()['decided_by']})" in md
    assert "denied by key:" in md and ": use staging" in md
    stack.delete(sid, api_key)


def test_a_pending_request_survives_its_worker_being_killed(
    tmp_path: Path, model_server: ModelServer
) -> None:
    with running_stack(tmp_path, model_server.base_url, workers=2) as s:
        api_key = key()
        sid = launch(s, api_key)
        owner = session_info(s, sid, api_key)["owner_worker"]
        marker = model_server.add_script(
            f"failover-{sid}", [[bash("echo applied-after-failover")], [text("done")]]
        )
        chat = chat_in_background(s, sid, api_key, f"go {marker}")
        req = next_request(s, sid, api_key, set())

        s.stop_worker(owner, kill=True)

        def adopted() -> str | None:
            now = session_info(s, sid, api_key)["owner_worker"]
            return now if now != owner and now in s.workers else None

        wait_until(adopted, 90, "another worker to adopt the session")
        # the adopting worker re-attached to the runner that still waits: still pending
        assert [p["request_id"] for p in pending(s, sid, api_key)] == [req["request_id"]]
        assert wait_until(
            lambda: session_info(s, sid, api_key)["status"] == "waiting", 30, "waiting status"
        )
        r = answer(s, sid, api_key, req["request_id"], decision="allow")
        assert r.status_code == 200 and r.json()["status"] == "applied", r.text
        # the chat's stream broke with its worker; the turn's end is in the history
        chat["thread"].join(120)

        def ran() -> dict[str, Any] | None:
            with s.client(api_key) as c:
                turn = c.get(f"/api/agents/{sid}/history").json()["turns"][-1]
            return turn if turn["completed_at"] else None

        turn = wait_until(ran, 90, "the turn to finish")
        assert [c["output"] for c in turn["tool_calls"]] == ["applied-after-failover"]
        assert turn["approvals"][0]["decision"] == "allow"


def test_an_unanswered_request_is_denied_after_the_workers_timeout(
    tmp_path: Path, model_server: ModelServer
) -> None:
    with running_stack(
        tmp_path, model_server.base_url, extra_env={"AGC_APPROVAL_TIMEOUT": "2"}
    ) as s:
        api_key = key()
        sid = launch(s, api_key)
        name = f"timeout-{sid}"
        marker = model_server.add_script(name, [[bash("echo never")], [text("gave up")]])
        events = s.chat_sse(sid, api_key, f"go {marker}")
        resolved = [e.data for e in events if e.event == "approval.resolved"]
        assert [(r["decision"], r["cause"]) for r in resolved] == [("deny", "timeout")]
        assert "within 2 s" in model_server.requests_for(name)[1].all_text
        assert pending(s, sid, api_key) == []
        late = answer(s, sid, api_key, resolved[0]["request_id"], decision="allow")
        assert late.status_code == 409, late.text


def test_allow_for_the_session_survives_a_runner_crash(stack: Stack) -> None:
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    api_key = key()
    config = CONFIG | {"permissions": {"ask": ["Bash(echo:*)", "Write(//workspace/asked/**)"]}}
    with stack.client() as c:
        r = c.post("/api/agents/launch", json={"api_key": api_key, "config": config})
    assert r.status_code == 200, r.text
    sid = str(r.json()["session_id"])
    try:
        name = f"grant-{sid}"
        marker = model.add_script(name, [[bash("echo before-the-crash")], [text("done")]])
        chat = chat_in_background(stack, sid, api_key, f"go {marker}")
        seen: set[str] = set()
        req = next_request(stack, sid, api_key, seen)
        commands_before = asyncio.run(commands_published(stack))
        r = answer(stack, sid, api_key, req["request_id"], decision="allow", scope="session")
        assert r.status_code == 200 and r.json()["status"] == "applied", r.text
        # the owning worker took the answer on the direct path: nothing went through JetStream
        assert asyncio.run(commands_published(stack)) == commands_before
        with stack.client(api_key) as c:
            listed = c.get(f"/api/agents/{sid}/approvals").json()
        assert listed["grants"] == ["Bash"] and listed["total"] == 0, listed
        events = finished(chat)
        assert [e.data["output"] for e in events if e.event == "tool.completed"] == [
            "before-the-crash"
        ]

        kill_runner(stack, sid, api_key)

        name = f"grant-after-{sid}"
        marker = model.add_script(
            name,
            [
                [bash("echo after-the-crash")],
                [tool_use("Write", {"file_path": "/workspace/asked/x.txt", "content": "x"})],
                [text("done")],
            ],
        )
        chat = chat_in_background(stack, sid, api_key, f"again {marker}")
        # the restarted runner was not told to ask about Bash again; Write still asks
        other = next_request(stack, sid, api_key, seen)
        assert other["tool"] == "Write", other
        r = answer(stack, sid, api_key, other["request_id"], decision="allow")
        assert r.status_code == 200, r.text
        events = finished(chat)
        assert [e.data["tool"] for e in events if e.event == "approval.requested"] == ["Write"]
        outputs = [e.data for e in events if e.event == "tool.completed"]
        assert outputs[0]["output"] == "after-the-crash" and not outputs[0]["is_error"]
        assert not outputs[1]["is_error"], outputs[1]
    finally:
        stack.delete(sid, api_key)
