"""Every bus message round-trips; messages from a newer version are tolerated."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from broker import commands, events, runner_wire, subjects
from broker.sealing import Sealer, SealError

SID = "conv-0123456789abcdef"

EVENT_SAMPLES: list[events.Event] = [
    events.SessionReady(session_id=SID, worker_id="w1", config_id="c", model="m", tools=["Bash"]),
    events.SessionStatus(session_id=SID, status="busy", detail="x"),
    events.UserMessage(session_id=SID, turn_id="t1", text="hi"),
    events.TurnStarted(session_id=SID, turn_id="t1"),
    events.TextDelta(session_id=SID, turn_id="t1", text="he", index=0),
    events.ThinkingDelta(session_id=SID, turn_id="t1", text="hm"),
    events.StreamRetry(session_id=SID, turn_id="t1", parent_tool_use_id="toolu_1"),
    events.AssistantText(session_id=SID, turn_id="t1", text="hello", model="m"),
    events.Thinking(session_id=SID, turn_id="t1", text="think", signature="s"),
    events.ToolStarted(
        session_id=SID, turn_id="t1", tool_use_id="tu1", name="Bash", input={"command": "ls"}
    ),
    events.ToolCompleted(
        session_id=SID,
        turn_id="t1",
        tool_use_id="tu1",
        name="Bash",
        output="a\nb",
        is_error=False,
        result={"stdout": "a"},
    ),
    events.TodoUpdated(
        session_id=SID,
        turn_id="t1",
        todos=[events.TodoItem(content="do", status="in_progress", active_form="doing")],
    ),
    events.TurnCompleted(
        session_id=SID,
        turn_id="t1",
        stop_reason="end_turn",
        duration_ms=5,
        num_turns=2,
        usage=events.Usage(input_tokens=3, output_tokens=4),
        cost_usd=0.01,
        sdk_session_id="s",
    ),
    events.SystemNotice(session_id=SID, subtype="init", data={"tools": ["Bash"]}),
    events.RawSdkMessage(session_id=SID, kind="RateLimitEvent", data={"a": 1}),
    events.ErrorEvent(
        session_id=SID, code="api_error", message="boom", detail="stderr", fatal=True
    ),
    events.SessionStopped(session_id=SID, reason="deleted"),
    events.ApprovalRequested(
        session_id=SID,
        turn_id="t1",
        request_id="apr-1",
        tool_use_id="toolu_1",
        tool="Bash",
        input={"command": "git push"},
        reason="matches an ask rule",
        reason_kind="rule",
        expires_at=1.0,
    ),
    events.ApprovalResolved(
        session_id=SID,
        turn_id="t1",
        request_id="apr-1",
        decision="deny",
        message="not today",
        by="key:abc",
        answer_id="ans-1",
    ),
    events.EgressDenied(
        session_id=SID,
        host="evil.example.com",
        port=443,
        reason="not on this session's egress allowlist",
        policy="allowlist",
        method="CONNECT",
    ),
]


def test_every_event_type_has_a_sample() -> None:
    assert {events.event_type(e) for e in EVENT_SAMPLES} == set(events.EVENT_TYPES)


@pytest.mark.parametrize("event", EVENT_SAMPLES, ids=events.event_type)
def test_event_round_trip(event: events.Event) -> None:
    data = events.encode_event(event)
    assert json.loads(data)["type"] == events.event_type(event)
    assert events.decode_event(data) == event


@pytest.mark.parametrize("event", EVENT_SAMPLES, ids=events.event_type)
def test_event_from_newer_version_with_extra_fields(event: events.Event) -> None:
    raw: dict[str, Any] = json.loads(events.encode_event(event))
    raw["field_added_in_v9"] = {"nested": [1, 2]}
    raw["v"] = 9
    decoded = events.decode_event(json.dumps(raw))
    assert type(decoded) is type(event)
    assert events.to_builtins(decoded)["session_id"] == SID


def test_unknown_event_type_is_kept_not_rejected() -> None:
    decoded = events.decode_event(b'{"type":"tool.progress","session_id":"s","pct":40}')
    assert isinstance(decoded, events.UnknownEvent)
    assert decoded.type == "tool.progress"
    assert decoded.raw["pct"] == 40


def test_malformed_known_event_is_rejected() -> None:
    with pytest.raises(msgspec.ValidationError):
        events.decode_event(b'{"type":"message","session_id":"s","turn_id":"t","text":5}')


COMMAND_SAMPLES: list[commands.Command] = [
    commands.Launch(
        session_id=SID,
        agent_id="agent-1",
        config_id="c",
        config={"id": "c"},
        sealed_api_key="v1.x",
        sealed_mcp_env=None,
    ),
    commands.Chat(session_id=SID, turn_id="t1", message="hello"),
    commands.Interrupt(session_id=SID),
    commands.Stop(session_id=SID, reason="idle_timeout"),
    commands.Approve(
        session_id=SID,
        answer=runner_wire.ApprovalAnswer(
            request_id="apr-1",
            decision="allow",
            scope="session",
            updated_input={"command": "ls"},
            by="key:abc",
        ),
    ),
]


@pytest.mark.parametrize("command", COMMAND_SAMPLES, ids=lambda c: type(c).__name__)
def test_command_round_trip_and_newer_fields(command: commands.Command) -> None:
    data = commands.encode_command(command)
    assert commands.decode_command(data) == command
    raw = json.loads(data)
    raw["priority"] = "high"
    assert commands.decode_command(json.dumps(raw)) == command


@pytest.mark.parametrize(
    "line",
    [
        runner_wire.Init(
            session_id=SID, config={"id": "c"}, api_key="k", mcp_env={"g": {"T": "v"}}
        ),
        runner_wire.Attach(after_seq=7),
        runner_wire.ChatIn(turn_id="t", message="m"),
        runner_wire.InterruptIn(),
        runner_wire.StopIn(reason="r"),
        runner_wire.ApproveIn(
            answer=runner_wire.ApprovalAnswer(request_id="apr-1", decision="deny", message="no")
        ),
    ],
    ids=lambda c: type(c).__name__,
)
def test_runner_protocol_round_trip(line: runner_wire.RunnerCommand) -> None:
    encoded = runner_wire.encode_line(line)
    assert encoded.endswith(b"\n")
    assert runner_wire.decode_command(encoded.strip()) == line


def test_envelope_carries_event_bytes_untouched() -> None:
    ev = events.encode_event(events.TextDelta(session_id=SID, turn_id="t", text="x"))
    line = runner_wire.encode_line(runner_wire.Envelope(seq=3, event=msgspec.Raw(ev), boot_id="b"))
    env = runner_wire.decode_envelope(line.strip())
    assert env.seq == 3 and bytes(env.event) == ev


@pytest.mark.parametrize("bad", ["conv-../x", "conv-abc.def", "x", "conv-*", "conv-ABCDEF12", ""])
def test_subjects_refuse_malformed_session_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        subjects.events(bad)


def test_sealing_binds_secret_to_session() -> None:
    s = Sealer("x" * 32)
    sealed = s.seal("sk-ant-secret", context=SID)
    assert "sk-ant-secret" not in sealed
    assert s.open(sealed, context=SID) == "sk-ant-secret"
    with pytest.raises(SealError):
        s.open(sealed, context="conv-ffffffffffffffff")
    with pytest.raises(SealError):
        Sealer("y" * 32).open(sealed, context=SID)
    assert s.key_matches("sk-ant-secret", s.key_hash("sk-ant-secret"))
    assert not s.key_matches("sk-ant-other", s.key_hash("sk-ant-secret"))
