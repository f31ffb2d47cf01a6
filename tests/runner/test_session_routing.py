"""How the session routes SDK frames to turns, fed frames directly (no CLI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from claude_agent_sdk import AssistantMessage, ResultMessage, TextBlock, ToolUseBlock

from broker.events import ErrorEvent, Event, event_type, to_builtins
from broker.runner_wire import ChatIn, Init
from runner.frames import Frame
from runner.session import AgentSession
from runner.settings import RunnerSettings
from runner.translate import Translator
from tests.runner.harness import base_config


def result(session_id: str = "sdk-1") -> ResultMessage:
    return ResultMessage(
        subtype="success",
        duration_ms=1,
        duration_api_ms=1,
        is_error=False,
        num_turns=1,
        session_id=session_id,
    )


def make_session(tmp_path: Path) -> tuple[AgentSession, list[Event]]:
    events: list[Event] = []
    settings = RunnerSettings(workspace=tmp_path, home=tmp_path, tmp_root=tmp_path)
    init = Init(session_id="s", config=base_config(), api_key="k")
    return AgentSession(init, settings, events.append), events


def view(events: list[Event]) -> list[tuple[str, Any]]:
    return [(event_type(e), to_builtins(e).get("turn_id")) for e in events]


async def test_a_turn_the_cli_starts_itself_is_framed_and_completed(tmp_path: Path) -> None:
    session, events = make_session(tmp_path)
    session._on_frame(Frame(AssistantMessage(content=[TextBlock("woke up")], model="m"), None))
    session._on_frame(Frame(result("sdk-9"), None))
    kinds = view(events)
    auto_id = kinds[0][1]
    assert auto_id.startswith("auto-")
    assert kinds == [
        ("turn.started", auto_id),
        ("message", auto_id),
        ("turn.completed", auto_id),
    ]
    assert session.sdk_session_id == "sdk-9"
    assert not session.busy


async def test_late_sub_agent_messages_stay_on_the_turn_that_spawned_them(
    tmp_path: Path,
) -> None:
    session, events = make_session(tmp_path)
    session._on_frame(Frame(AssistantMessage(content=[TextBlock("x")], model="m"), None))
    spawn = AssistantMessage(
        content=[ToolUseBlock(id="toolu_agent", name="Agent", input={"prompt": "p"})], model="m"
    )
    session._on_frame(Frame(spawn, None))
    session._on_frame(Frame(result(), None))
    first_turn = view(events)[0][1]
    events.clear()
    # the sub-agent reports after its turn ended: no new turn, same turn id
    late = AssistantMessage(
        content=[TextBlock("sub-agent result")], model="m", parent_tool_use_id="toolu_agent"
    )
    session._on_frame(Frame(late, None))
    assert view(events) == [("message", first_turn)]
    assert not session.busy


async def test_a_frame_that_cannot_be_translated_is_reported_and_the_stream_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, events = make_session(tmp_path)
    original = Translator.translate

    def flaky(self: Translator, message: Any, raw: Any, ctx: Any) -> list[Event]:
        if raw == {"type": "poison"}:
            raise ValueError("cannot handle this")
        return original(self, message, raw, ctx)

    monkeypatch.setattr(Translator, "translate", flaky)
    session._on_frame(Frame(None, {"type": "poison"}))
    session._on_frame(Frame(None, {"type": "fine"}))
    assert [event_type(e) for e in events] == ["error", "sdk.raw"]
    assert isinstance(events[0], ErrorEvent)
    assert "cannot handle this" in events[0].message
    assert "poison" in events[0].detail


async def test_an_interrupt_with_nothing_running_reaches_the_next_queued_chat(
    tmp_path: Path,
) -> None:
    session, events = make_session(tmp_path)
    assert session.interrupt() is None  # nothing queued: a no-op
    session.submit(ChatIn(turn_id="t1", message="hi"))
    session.submit(ChatIn(turn_id="t2", message="hi again"))
    assert session.interrupt() is None  # marks t1, not yet started
    assert session._pending[0][1].ctx.interrupted
    assert not session._pending[1][1].ctx.interrupted
    await session.finish()
    assert view(events) == [
        ("user.message", "t1"),
        ("turn.started", "t1"),
        ("turn.completed", "t1"),
        ("user.message", "t2"),
        ("turn.started", "t2"),
        ("turn.completed", "t2"),
    ]
