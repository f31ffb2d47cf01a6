"""A person in the loop, runner side: the real SDK and CLI ask, the runner waits for an answer.

The config's ``permissions`` go to Claude Code as its own rules; the CLI calls the runner's
``can_use_tool`` for calls it must ask about; the runner emits ``approval.requested`` and applies
the ``approve`` command it is sent (or a timeout, or an interrupt).
"""

from __future__ import annotations

import uuid
from typing import Any

from broker.runner_wire import ApprovalAnswer, ApproveIn
from tests.modelserver.script import StepSpec, ToolUseBlock, text, tool_use
from tests.modelserver.server import ModelServer
from tests.runner.conftest import StartRunner
from tests.runner.harness import Received, RunnerProcess, base_config


def asking(**permissions: Any) -> dict[str, Any]:
    return base_config(permissions={"ask": ["Bash(echo:*)"], **permissions})


def answer(runner: RunnerProcess, request_id: str, decision: str, **kw: Any) -> None:
    runner.send(ApproveIn(answer=ApprovalAnswer(request_id=request_id, decision=decision, **kw)))


def of(events: list[Received], type_: str) -> list[dict[str, Any]]:
    return [e.data for e in events if e.type == type_]


def bash(command: str) -> ToolUseBlock:
    return tool_use("Bash", {"command": command, "description": "scripted"})


async def test_an_allowed_request_runs_the_tool_and_is_recorded_in_order(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    name = f"allow-{uuid.uuid4().hex[:6]}"
    marker = model_server.add_script(name, [[bash("echo approved-ran")], [text("done")]])
    await runner.ready(model_server.base_url, asking())
    turn_id = runner.chat(f"go {marker}")

    req = (await runner.wait_for("approval.requested")).data
    assert req["turn_id"] == turn_id
    assert req["tool"] == "Bash" and req["input"]["command"] == "echo approved-ran"
    assert req["reason_kind"] == "rule" and "ask rule" in req["reason"]
    assert req["parent_tool_use_id"] is None
    assert req["expires_at"] > req["ts"]
    # nothing ran yet: the model was asked once, its tool waits
    assert [r.step for r in model_server.requests_for(name)] == [0]

    # a re-attaching worker learns what is pending from the runner itself
    runner.attach(10**9)
    notice = await runner.wait_for("system", lambda r: r.data["subtype"] == "runner.attached")
    assert [p["request_id"] for p in notice.data["data"]["pending_approvals"]] == [
        req["request_id"]
    ]

    answer(runner, req["request_id"], "allow", by="key:abc123", by_name="alice", answer_id="a1")
    events = await runner.turn(turn_id)
    started = [e for e in events if e.type == "tool.started"]
    assert started and started[0].data["tool_use_id"] == req["tool_use_id"]
    done = of(events, "tool.completed")
    assert done[0]["output"] == "approved-ran" and done[0]["is_error"] is False
    resolved = of(events, "approval.resolved")
    assert len(resolved) == 1
    assert resolved[0] | {"ts": 0} == resolved[0] | {
        "ts": 0,
        "request_id": req["request_id"],
        "decision": "allow",
        "scope": "once",
        "cause": "answer",
        "by": "key:abc123",
        "by_name": "alice",
        "answer_id": "a1",
        "turn_id": turn_id,
    }
    kinds = [e.type for e in events]
    assert (
        kinds.index("tool.started")
        < kinds.index("approval.requested")
        < kinds.index("approval.resolved")
        < kinds.index("tool.completed")
    )
    # answering again: nothing is pending any more
    answer(runner, req["request_id"], "deny")
    err = await runner.wait_for("error", lambda r: r.data["code"] == "approval_not_pending")
    assert err.data["detail"] == req["request_id"]
    assert await runner.stop() == 0


async def test_a_denial_tells_the_model_the_message_and_an_edit_runs_as_edited(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    name = f"deny-{uuid.uuid4().hex[:6]}"
    marker = model_server.add_script(
        name, [[bash("echo first")], [bash("echo second")], [text("done")]]
    )
    await runner.ready(model_server.base_url, asking())
    turn_id = runner.chat(f"go {marker}")
    first = (await runner.wait_for("approval.requested")).data
    answer(runner, first["request_id"], "deny", message="Not on a Friday, use the staging box")
    second = (await runner.wait_for("approval.requested")).data
    assert second["input"]["command"] == "echo second"
    answer(
        runner,
        second["request_id"],
        "allow",
        updated_input={"command": "echo edited-by-a-person", "description": "edited"},
    )
    events = await runner.turn(turn_id)

    # the denial's message is what the model's next request carries as the tool result
    after_deny = model_server.requests_for(name)[1]
    assert "Not on a Friday, use the staging box" in after_deny.all_text
    outputs = [(d["output"], d["is_error"]) for d in of(events, "tool.completed")]
    assert outputs[0][1] is True and "Not on a Friday" in outputs[0][0]
    assert outputs[1] == ("edited-by-a-person", False)
    resolved = of(events, "approval.resolved")
    assert [(r["decision"], r["message"]) for r in resolved] == [
        ("deny", "Not on a Friday, use the staging box"),
        ("allow", ""),
    ]
    assert resolved[1]["updated_input"]["command"] == "echo edited-by-a-person"
    assert "edited-by-a-person" in model_server.requests_for(name)[2].all_text
    assert await runner.stop() == 0


async def test_allow_for_the_session_asks_no_more_even_when_bypassing_permissions(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    name = f"session-{uuid.uuid4().hex[:6]}"
    marker = model_server.add_script(name, [[bash("echo one")], [bash("echo two")], [text("done")]])
    # ask rules hold under bypassPermissions too (Claude Code checks them before the mode)
    config = asking() | {"permission_mode": "bypassPermissions"}
    await runner.ready(model_server.base_url, config, env={"IS_SANDBOX": "1"})
    turn_id = runner.chat(f"go {marker}")
    req = (await runner.wait_for("approval.requested")).data
    answer(runner, req["request_id"], "allow", scope="session")
    events = await runner.turn(turn_id)
    assert len(of(events, "approval.requested")) == 1
    assert of(events, "approval.resolved")[0]["scope"] == "session"
    assert [d["output"] for d in of(events, "tool.completed")] == ["one", "two"]

    # and in the next turn too
    marker2 = model_server.add_script(f"{name}-b", [[bash("echo three")], [text("ok")]])
    events = await runner.turn(runner.chat(f"again {marker2}"))
    assert of(events, "approval.requested") == []
    assert [d["output"] for d in of(events, "tool.completed")] == ["three"]
    assert await runner.stop() == 0


async def test_grants_from_init_are_not_asked_again_and_a_repeated_answer_is_dropped(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    # A runner restarted for a session starts with the platform's record of its grants.
    runner = await start_runner()
    secret = runner.workspace / "secrets" / "key.txt"
    secret.parent.mkdir()
    name = f"granted-{uuid.uuid4().hex[:6]}"
    marker = model_server.add_script(
        name,
        [
            [bash("echo granted-before")],
            [tool_use("Write", {"file_path": str(secret), "content": "x"})],
            [text("done")],
        ],
    )
    config = asking(ask=["Bash(echo:*)", f"Write(/{runner.workspace}/secrets/**)"])
    await runner.ready(model_server.base_url, config, session_grants=["Bash"])
    turn_id = runner.chat(f"go {marker}")
    req = (await runner.wait_for("approval.requested")).data
    # Bash ran without asking; the other tool still asks
    assert req["tool"] == "Write"
    once = ApprovalAnswer(request_id=req["request_id"], decision="allow", answer_id="ans-1")
    runner.send(ApproveIn(answer=once))
    # the same answer relayed a second time (direct path and JetStream both delivered it)
    runner.send(ApproveIn(answer=once))
    events = await runner.turn(turn_id)
    assert len(of(events, "approval.requested")) == 1
    assert [(r["tool"], r["answer_id"]) for r in of(events, "approval.resolved")] == [
        ("Write", "ans-1")
    ]
    assert next(d["output"] for d in of(events, "tool.completed")) == "granted-before"
    assert secret.read_text() == "x"
    # nothing complained about the repeat: it was dropped, not refused
    assert not [e for e in runner.received if e.type == "error"]
    assert await runner.stop() == 0


async def test_an_unanswered_request_is_denied_after_the_timeout_with_a_message(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    name = f"timeout-{uuid.uuid4().hex[:6]}"
    marker = model_server.add_script(name, [[bash("echo never")], [text("gave up")]])
    await runner.ready(model_server.base_url, asking(), approval_timeout=1.5)
    events = await runner.turn(runner.chat(f"go {marker}"))
    resolved = of(events, "approval.resolved")
    assert [(r["decision"], r["cause"]) for r in resolved] == [("deny", "timeout")]
    assert "within 1.5 s" in resolved[0]["message"]
    assert "within 1.5 s" in model_server.requests_for(name)[1].all_text
    assert of(events, "tool.completed")[0]["is_error"] is True
    assert events[-1].data["is_error"] is False
    assert await runner.stop() == 0


async def test_an_interrupt_cancels_the_pending_request(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    marker = model_server.add_script(
        f"intr-{uuid.uuid4().hex[:6]}", [[bash("echo never")], [text("x")]]
    )
    await runner.ready(model_server.base_url, asking())
    turn_id = runner.chat(f"go {marker}")
    req = (await runner.wait_for("approval.requested")).data
    runner.interrupt()
    events = await runner.turn(turn_id)
    resolved = of(events, "approval.resolved")
    assert [(r["request_id"], r["decision"], r["cause"]) for r in resolved] == [
        (req["request_id"], "deny", "interrupted")
    ]
    assert events[-1].data["interrupted"] is True
    assert not any(d.get("output") == "never" for d in of(events, "tool.completed"))
    assert await runner.stop() == 0


async def test_unlisted_calls_are_refused_unless_the_config_says_ask(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    # Read is not allowed: Claude Code would ask. With otherwise=deny nobody is asked.
    steps: list[StepSpec] = [[tool_use("Read", {"file_path": "/etc/hostname"})], [text("done")]]
    runner = await start_runner()
    config = asking() | {"allowed_tools": ["Bash"]}
    await runner.ready(model_server.base_url, config)
    marker = model_server.add_script(f"unl-{uuid.uuid4().hex[:6]}", steps)
    events = await runner.turn(runner.chat(f"read {marker}"))
    assert of(events, "approval.requested") == []
    assert of(events, "tool.completed")[0]["is_error"] is True
    assert await runner.stop() == 0

    runner = await start_runner()
    config = asking(otherwise="ask") | {"allowed_tools": ["Bash"]}
    await runner.ready(model_server.base_url, config)
    marker = model_server.add_script(f"unl2-{uuid.uuid4().hex[:6]}", steps)
    turn_id = runner.chat(f"read {marker}")
    req = (await runner.wait_for("approval.requested")).data
    assert req["tool"] == "Read" and req["reason_kind"] == "path"
    assert "outside" in req["reason"]
    answer(runner, req["request_id"], "allow")
    events = await runner.turn(turn_id)
    assert of(events, "tool.completed")[0]["is_error"] is False
    assert await runner.stop() == 0


async def test_a_sub_agents_call_is_asked_with_its_parent_and_write_rules_cover_paths(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    secret = runner.workspace / "secrets" / "key.txt"
    inner = model_server.add_script(
        f"sub-in-{uuid.uuid4().hex[:6]}",
        [
            [bash("echo from-the-sub-agent")],
            [tool_use("Write", {"file_path": str(secret), "content": "x"})],
            [text("sub done")],
        ],
    )
    outer = model_server.add_script(
        f"sub-out-{uuid.uuid4().hex[:6]}",
        [
            [
                tool_use(
                    "Agent",
                    {"description": "d", "prompt": f"work {inner}", "subagent_type": "worker"},
                )
            ],
            [text("main done")],
        ],
    )
    config = base_config(
        allowed_tools=["Read", "Task"],
        agents={"worker": {"description": "d", "prompt": "p", "tools": ["Bash", "Write"]}},
        # "//" starts an absolute path in Claude Code's rules (one "/" is relative)
        permissions={"ask": ["Bash(echo:*)", f"Write(/{runner.workspace}/secrets/**)"]},
    )
    await runner.ready(model_server.base_url, config)
    turn_id = runner.chat(f"delegate {outer}")
    first = (await runner.wait_for("approval.requested")).data
    agent_call = next(r.data for r in runner.events_of(turn_id) if r.type == "tool.started")
    assert agent_call["name"] == "Agent"
    assert first["tool"] == "Bash" and first["parent_tool_use_id"] == agent_call["tool_use_id"]
    assert first["turn_id"] == turn_id and first["agent_id"]
    answer(runner, first["request_id"], "allow")
    second = (await runner.wait_for("approval.requested")).data
    assert second["tool"] == "Write" and second["input"]["file_path"] == str(secret)
    answer(runner, second["request_id"], "deny", message="no secrets")
    events = await runner.turn(turn_id)
    assert not secret.exists()
    assert [r["decision"] for r in of(events, "approval.resolved")] == ["allow", "deny"]
    assert await runner.stop() == 0
