"""One fold for turns (api.agents.turns): history and the JSON chat answer read events alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from api.agents import service
from api.agents.history import build_history
from api.agents.turns import fold_turns
from broker.events import (
    AssistantText,
    ErrorEvent,
    Event,
    ToolCompleted,
    ToolStarted,
    TurnCompleted,
    Usage,
    UserMessage,
)

SID = "conv-0123456789abcdef"


def wire(*events: Event | dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e if isinstance(e, dict) else msgspec.json.decode(msgspec.json.encode(e)) for e in events
    ]


EVENTS = wire(
    UserMessage(session_id=SID, turn_id="t1", text="hi", ts=1.0),
    ToolStarted(session_id=SID, turn_id="t1", tool_use_id="u1", name="Bash", input={"c": "ls"}),
    ToolCompleted(session_id=SID, turn_id="t1", tool_use_id="u1", name="Bash", output="a"),
    # A completion whose start aged out of the stream still shows.
    ToolCompleted(session_id=SID, turn_id="t1", tool_use_id="u0", name="Read", is_error=True),
    AssistantText(session_id=SID, turn_id="t1", text="from a sub-agent", parent_tool_use_id="u1"),
    AssistantText(session_id=SID, turn_id="t1", text="done"),
    {"type": "from.the.future", "session_id": SID, "turn_id": "t1", "ts": 1.5, "x": 1},
    # A known type with a wrong field type (it came out of a container): skipped.
    {"type": "message", "session_id": SID, "turn_id": "t1", "text": 42},
    ErrorEvent(session_id=SID, turn_id="t1", code="c", message="m", detail="d"),
    TurnCompleted(
        session_id=SID,
        turn_id="t1",
        usage=Usage(input_tokens=5, output_tokens=7),
        cost_usd=0.01,
        duration_ms=12,
        num_turns=2,
        stop_reason="end_turn",
    ),
)


class _Ev:
    def __init__(self, d: dict[str, Any]) -> None:
        self.data = msgspec.json.encode(d)


class _Feed:
    session_id = SID

    async def close(self) -> None:
        pass


async def test_history_and_chat_answer_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    async def turn_events(_feed: Any, turn_id: str) -> AsyncIterator[_Ev]:
        for d in EVENTS:
            yield _Ev(d)
            await asyncio.sleep(0)

    monkeypatch.setattr(service, "turn_events", turn_events)
    answer = await service.collect_turn(_Feed(), "t1", 5)  # type: ignore[arg-type]
    (turn,) = build_history(SID, EVENTS)["turns"]

    assert answer["text"] == "done" == "\n\n".join(turn["assistant"])
    assert answer["tool_calls"] == turn["tool_calls"]
    assert [t["tool_use_id"] for t in turn["tool_calls"]] == ["u1", "u0"]
    assert turn["tool_calls"][1]["is_error"] is True and turn["tool_calls"][1]["input"] is None
    assert answer["usage"] == turn["usage"] and answer["usage"]["output_tokens"] == 7
    assert (answer["cost_usd"], answer["duration_ms"]) == (turn["cost_usd"], turn["duration_ms"])
    assert answer["is_error"] is True  # an error event marks the answer
    assert answer["errors"] == [{"code": "c", "message": "m", "detail": "d"}]
    assert turn["errors"] == [{"code": "c", "message": "m"}]
    assert turn["user"] == "hi" and turn["started_at"] == 1.0


def test_turns_are_kept_in_the_order_they_started() -> None:
    events = wire(
        UserMessage(session_id=SID, turn_id="b", text="1"),
        UserMessage(session_id=SID, turn_id="a", text="2"),
        TurnCompleted(session_id=SID, turn_id="b"),
        TurnCompleted(session_id=SID, turn_id="a", interrupted=True),
    )
    turns = fold_turns(events)
    assert [(t.turn_id, t.user) for t in turns] == [("b", "1"), ("a", "2")]
    assert turns[1].completed is not None and turns[1].completed.interrupted


async def test_a_turn_that_never_completes_is_an_error_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def turn_events(_feed: Any, turn_id: str) -> AsyncIterator[_Ev]:
        yield _Ev(EVENTS[5])

    monkeypatch.setattr(service, "turn_events", turn_events)
    answer = await service.collect_turn(_Feed(), "t1", 5)  # type: ignore[arg-type]
    assert answer["is_error"] is True and answer["text"] == "done" and answer["usage"] == {}
