"""SDK message objects → platform events, without a CLI."""

from __future__ import annotations

from typing import Any

import pytest
from claude_agent_sdk import (
    AssistantMessage,
    RateLimitEvent,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)
from claude_agent_sdk.types import RateLimitInfo, TaskStartedMessage

from broker.events import (
    AssistantText,
    ErrorEvent,
    Event,
    RawSdkMessage,
    StreamRetry,
    SystemNotice,
    TextDelta,
    Thinking,
    ThinkingDelta,
    TodoUpdated,
    ToolCompleted,
    ToolStarted,
    TurnCompleted,
    decode_event,
    encode_event,
)
from runner.translate import Translator, TurnContext

SID = "sess-1"


def ctx(turn_id: str = "t1", **kw: Any) -> TurnContext:
    return TurnContext(turn_id, **kw)


def stream(event: dict[str, Any], parent: str | None = None) -> StreamEvent:
    return StreamEvent(uuid="u", session_id="sdk", event=event, parent_tool_use_id=parent)


def result(**kw: Any) -> ResultMessage:
    base: dict[str, Any] = {
        "subtype": "success",
        "duration_ms": 120,
        "duration_api_ms": 80,
        "is_error": False,
        "num_turns": 3,
        "session_id": "sdk-session",
        "stop_reason": "end_turn",
        "total_cost_usd": 0.25,
        "usage": {
            "input_tokens": 100,
            "output_tokens": 20,
            "cache_creation_input_tokens": 3,
            "cache_read_input_tokens": 4,
        },
        "result": "done",
    }
    base.update(kw)
    return ResultMessage(**base)


def roundtrip(events: list[Event]) -> None:
    for event in events:
        assert decode_event(encode_event(event)) == event


def test_text_and_thinking_deltas_carry_index_and_parent() -> None:
    tr = Translator(SID)
    text = tr.translate(
        stream(
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "text_delta", "text": "Hi"},
            },
            parent="toolu_parent",
        ),
        None,
        ctx(),
    )
    think = tr.translate(
        stream(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "hmm"},
            }
        ),
        None,
        ctx(),
    )
    assert text == [
        TextDelta(
            session_id=SID,
            turn_id="t1",
            text="Hi",
            index=2,
            parent_tool_use_id="toolu_parent",
            ts=text[0].ts,
        )
    ]
    assert isinstance(think[0], ThinkingDelta)
    assert think[0].text == "hmm"
    roundtrip(text + think)


@pytest.mark.parametrize(
    "event",
    [
        {"type": "message_start", "message": {}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
        {"type": "message_stop"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta"}},
    ],
)
def test_structural_stream_events_are_skipped(event: dict[str, Any]) -> None:
    # The complete block follows as an AssistantMessage; these would only duplicate it.
    assert Translator(SID).translate(stream(event), None, ctx()) == []


def test_unknown_stream_event_is_kept_raw() -> None:
    out = Translator(SID).translate(stream({"type": "error", "error": {"x": 1}}), None, ctx())
    assert len(out) == 1
    assert isinstance(out[0], RawSdkMessage)
    assert out[0].kind == "stream.error"
    assert out[0].data == {"type": "error", "error": {"x": 1}}


def test_assistant_blocks_become_events_in_order_with_todos() -> None:
    todos = [
        {"content": "write tests", "status": "in_progress", "activeForm": "Writing tests"},
        {"content": "ship", "status": "pending", "activeForm": "Shipping"},
    ]
    msg = AssistantMessage(
        content=[
            ThinkingBlock(thinking="plan", signature="sig"),
            TextBlock(text="Working on it"),
            ToolUseBlock(id="toolu_1", name="Bash", input={"command": "ls"}),
            ToolUseBlock(id="toolu_2", name="TodoWrite", input={"todos": todos}),
        ],
        model="claude-x",
        parent_tool_use_id="toolu_agent",
    )
    out = Translator(SID).translate(msg, None, ctx())
    assert [type(e) for e in out] == [
        Thinking,
        AssistantText,
        ToolStarted,
        ToolStarted,
        TodoUpdated,
    ]
    thinking, text, bash, todo_call, todo = out
    assert isinstance(thinking, Thinking)
    assert (thinking.text, thinking.signature) == ("plan", "sig")
    assert isinstance(text, AssistantText)
    assert (text.text, text.model, text.parent_tool_use_id) == (
        "Working on it",
        "claude-x",
        "toolu_agent",
    )
    assert isinstance(bash, ToolStarted)
    assert (bash.tool_use_id, bash.name, bash.input) == ("toolu_1", "Bash", {"command": "ls"})
    assert isinstance(todo_call, ToolStarted)
    assert todo_call.name == "TodoWrite"
    assert isinstance(todo, TodoUpdated)
    assert [(t.content, t.status, t.active_form) for t in todo.todos] == [
        ("write tests", "in_progress", "Writing tests"),
        ("ship", "pending", "Shipping"),
    ]
    roundtrip(out)


def test_tool_result_remembers_name_and_keeps_structured_result() -> None:
    tr = Translator(SID)
    tr.translate(
        AssistantMessage(
            content=[ToolUseBlock(id="toolu_9", name="Bash", input={"command": "echo hi"})],
            model="m",
        ),
        None,
        ctx("t7"),
    )
    structured = {"stdout": "hi", "stderr": "", "interrupted": False}
    out = tr.translate(
        UserMessage(
            content=[ToolResultBlock(tool_use_id="toolu_9", content="hi", is_error=False)],
            tool_use_result=structured,
        ),
        None,
        ctx("t8"),
    )
    assert out == [
        ToolCompleted(
            session_id=SID,
            turn_id="t8",
            tool_use_id="toolu_9",
            name="Bash",
            output="hi",
            is_error=False,
            result=structured,
            ts=out[0].ts,
        )
    ]
    assert tr.turn_of("toolu_9") == "t7"


def test_tool_result_list_content_joins_text_and_keeps_images() -> None:
    content: list[dict[str, Any]] = [
        {"type": "text", "text": "line 1"},
        {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
        {"type": "text", "text": "line 2"},
    ]
    out = Translator(SID).translate(
        UserMessage(content=[ToolResultBlock(tool_use_id="x", content=content, is_error=True)]),
        None,
        ctx(),
    )
    (done,) = out
    assert isinstance(done, ToolCompleted)
    assert done.output == "line 1\nline 2"
    assert done.is_error is True
    assert done.result == content


def test_blocks_the_sdk_parser_drops_are_kept_raw_in_wire_order() -> None:
    raw = {
        "type": "assistant",
        "message": {
            "model": "m",
            "content": [
                {"type": "text", "text": "a"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "b"},
            ],
        },
    }
    # What parse_message() makes of that frame: the redacted block is gone.
    parsed = AssistantMessage(content=[TextBlock("a"), TextBlock("b")], model="m")
    out = Translator(SID).translate(parsed, raw, ctx())
    assert [type(e) for e in out] == [AssistantText, RawSdkMessage, AssistantText]
    raw_event = out[1]
    assert isinstance(raw_event, RawSdkMessage)
    assert raw_event.kind == "assistant.redacted_thinking"
    assert raw_event.data == {"type": "redacted_thinking", "data": "opaque"}


def test_user_text_and_images_are_kept_raw() -> None:
    raw = {
        "type": "user",
        "message": {
            "content": [
                {"type": "text", "text": "look around"},
                {"type": "image", "source": {"data": "AAAA"}},
            ]
        },
    }
    parsed = UserMessage(content=[TextBlock("look around")], parent_tool_use_id="toolu_a")
    out = Translator(SID).translate(parsed, raw, ctx())
    assert [(e.kind, e.data) for e in out if isinstance(e, RawSdkMessage)] == [
        ("user.text", {"text": "look around", "parent_tool_use_id": "toolu_a"}),
        ("user.image", {"type": "image", "source": {"data": "AAAA"}}),
    ]


def test_system_messages_pass_their_payload() -> None:
    init = SystemMessage(subtype="init", data={"type": "system", "tools": ["Bash"], "model": "m"})
    task = TaskStartedMessage(
        subtype="task_started",
        data={"type": "system", "subtype": "task_started", "task_id": "k"},
        task_id="k",
        description="d",
        uuid="u",
        session_id="s",
    )
    out = Translator(SID).translate(init, None, ctx()) + Translator(SID).translate(
        task, None, TurnContext(None)
    )
    assert [(e.subtype, e.turn_id) for e in out if isinstance(e, SystemNotice)] == [
        ("init", "t1"),
        ("task_started", None),
    ]
    assert isinstance(out[0], SystemNotice)
    assert out[0].data["tools"] == ["Bash"]
    roundtrip(out)


def test_result_becomes_turn_completed_with_usage_and_cost() -> None:
    c = ctx()
    (done,) = Translator(SID).translate(result(), None, c)
    assert isinstance(done, TurnCompleted)
    assert (done.turn_id, done.subtype, done.stop_reason, done.result) == (
        "t1",
        "success",
        "end_turn",
        "done",
    )
    assert (done.num_turns, done.duration_ms, done.duration_api_ms) == (3, 120, 80)
    assert (done.usage.input_tokens, done.usage.output_tokens) == (100, 20)
    assert (done.usage.cache_creation_input_tokens, done.usage.cache_read_input_tokens) == (3, 4)
    assert done.cost_usd == 0.25
    assert done.sdk_session_id == "sdk-session"
    assert not done.is_error
    assert not done.interrupted
    assert c.completed


@pytest.mark.parametrize("reason", ["aborted_tools", "aborted_streaming"])
def test_interrupted_result_is_not_an_error(reason: str) -> None:
    out = Translator(SID).translate(
        result(subtype="error_during_execution", is_error=True, terminal_reason=reason),
        None,
        ctx(),
    )
    assert [type(e) for e in out] == [TurnCompleted]
    assert isinstance(out[0], TurnCompleted)
    assert out[0].interrupted
    assert not out[0].is_error
    assert out[0].subtype == "error_during_execution"


def test_api_error_yields_one_error_with_status_and_stderr() -> None:
    tr = Translator(SID)
    c = ctx(detail=lambda: "cli stderr line")
    failed = AssistantMessage(
        content=[TextBlock("API Error: 500 boom")], model="<synthetic>", error="server_error"
    )
    first = tr.translate(failed, None, c)
    last = tr.translate(
        result(is_error=True, api_error_status=500, result="API Error: 500 boom"), None, c
    )
    assert [type(e) for e in first] == [AssistantText]
    assert [type(e) for e in last] == [ErrorEvent, TurnCompleted]
    error, done = last
    assert isinstance(error, ErrorEvent)
    assert error.code == "server_error"
    assert error.message == "API Error: 500 boom"
    assert "api_error_status: 500" in error.detail
    assert "cli stderr line" in error.detail
    assert isinstance(done, TurnCompleted)
    assert done.is_error


def test_error_result_without_api_error_uses_subtype() -> None:
    out = Translator(SID).translate(
        result(subtype="error_max_turns", is_error=True, result=None, errors=["max turns hit"]),
        None,
        ctx(),
    )
    error = out[0]
    assert isinstance(error, ErrorEvent)
    assert (error.code, error.message) == ("error_max_turns", "max turns hit")


def test_other_messages_become_sdk_raw() -> None:
    rate = RateLimitEvent(
        rate_limit_info=RateLimitInfo(status="allowed_warning", raw={"status": "allowed_warning"}),
        uuid="u",
        session_id="s",
    )
    out = Translator(SID).translate(rate, None, ctx())
    unknown = Translator(SID).translate(None, {"type": "tool_progress", "n": 1}, ctx())
    assert [(e.kind, e.turn_id) for e in out + unknown if isinstance(e, RawSdkMessage)] == [
        ("rate_limit_event", "t1"),
        ("tool_progress", "t1"),
    ]
    assert isinstance(unknown[0], RawSdkMessage)
    assert unknown[0].data == {"type": "tool_progress", "n": 1}
    roundtrip(out + unknown)


def _delta(text: str) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": text},
    }


def test_a_model_stream_started_again_before_it_stopped_is_marked_as_a_retry() -> None:
    t = Translator(SID)
    start, stop = {"type": "message_start", "message": {}}, {"type": "message_stop"}
    out = [
        *t.translate(stream(start), None, ctx()),
        *t.translate(stream(_delta("w00 ")), None, ctx()),
        # the stream is cut here (its gateway died); the CLI sends the request again
        *t.translate(stream(start), None, ctx()),
        *t.translate(stream(_delta("w00 w01")), None, ctx()),
        *t.translate(stream(stop), None, ctx()),
        # a normal next request of the same turn (after a tool call) is no retry
        *t.translate(stream(start), None, ctx()),
        *t.translate(stream(stop), None, ctx()),
    ]
    assert [type(e) for e in out] == [TextDelta, StreamRetry, TextDelta]
    retry = out[1]
    assert isinstance(retry, StreamRetry)
    assert retry.turn_id == "t1" and retry.parent_tool_use_id is None
    roundtrip(out)


def test_retries_are_tracked_per_sub_agent_and_per_turn() -> None:
    t = Translator(SID)
    start = {"type": "message_start", "message": {}}
    # The lead and a sub-agent stream at once: each has its own open stream.
    assert t.translate(stream(start), None, ctx()) == []
    assert t.translate(stream(start, parent="toolu_1"), None, ctx()) == []
    again = t.translate(stream(start, parent="toolu_1"), None, ctx())
    assert [(type(e), e.parent_tool_use_id) for e in again] == [(StreamRetry, "toolu_1")]  # type: ignore[attr-defined]
    # A turn interrupted mid-stream never sees message_stop: the next turn starts clean.
    t.translate(result(), None, ctx())
    assert t.translate(stream(start), None, ctx("t2")) == []


def test_the_clis_api_retry_notice_voids_what_the_cut_stream_showed() -> None:
    t = Translator(SID)
    t.translate(stream({"type": "message_start", "message": {}}), None, ctx())
    t.translate(stream(_delta("w00 ")), None, ctx())
    retry = SystemMessage(subtype="api_retry", data={"subtype": "api_retry", "attempt": 1})
    out = t.translate(retry, None, ctx())
    assert [type(e) for e in out] == [SystemNotice, StreamRetry]
    # The retried request's own message_start is the stream starting again, not a second retry.
    assert t.translate(stream({"type": "message_start", "message": {}}), None, ctx()) == []
    # With no stream known (the cut came before any delta), the lead's is the one marked.
    fresh = Translator(SID).translate(retry, None, ctx())
    assert [(type(e), getattr(e, "parent_tool_use_id", "-")) for e in fresh] == [
        (SystemNotice, "-"),
        (StreamRetry, None),
    ]
