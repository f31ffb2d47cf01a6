"""The scripted model server: script selection and its Messages API wire format."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.modelserver.script import http_error, step, text, thinking, tool_use
from tests.modelserver.server import ModelServer, select

REMINDER = {"type": "text", "text": "<system-reminder>\nctx\n</system-reminder>"}


def user(*texts: str, reminder: bool = True) -> dict[str, Any]:
    blocks = ([REMINDER] if reminder else []) + [{"type": "text", "text": t} for t in texts]
    return {"role": "user", "content": blocks}


def assistant() -> dict[str, Any]:
    return {"role": "assistant", "content": [{"type": "text", "text": "ok"}]}


def tool_result() -> dict[str, Any]:
    return {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}],
    }


def test_step_is_the_number_of_assistant_messages_since_the_marker() -> None:
    convo = [user("go [[script:a]]"), {"role": "system", "content": "env"}]
    assert select(convo) == ("a", 0, "go [[script:a]]")
    convo += [assistant(), tool_result(), assistant(), tool_result()]
    assert select(convo)[:2] == ("a", 2)


def test_only_the_last_human_text_counts() -> None:
    # after a failed turn the CLI merges the next prompt into the same user message
    merged = [user("boom [[script:err]]\n", "hello again")]
    assert select(merged) == (None, 0, "hello again")
    later = [user("go [[script:a]]"), assistant(), user("no marker here")]
    assert select(later)[:2] == (None, 0)
    assert select([{"role": "user", "content": "plain [[script:b]]"}])[:2] == ("b", 0)


def sse_events(body: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]


def post(server: ModelServer, messages: list[dict[str, Any]]) -> httpx.Response:
    payload = {"model": "m-1", "stream": True, "system": "SYS", "messages": messages}
    return httpx.post(f"{server.base_url}/v1/messages?beta=true", json=payload, timeout=10)


def test_streams_blocks_as_anthropic_sse(model_server: ModelServer) -> None:
    model_server.add_script(
        "wire",
        [
            step(
                thinking("plan"),
                text("Hello world", chunk=5),
                tool_use("Bash", {"command": "ls"}, id="toolu_fixed"),
                delay=0.001,
            )
        ],
    )
    response = post(model_server, [user("go [[script:wire]]")])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert [e["type"] for e in events][:2] == ["message_start", "content_block_start"]
    assert events[0]["message"]["model"] == "m-1"
    deltas = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert [d["type"] for d in deltas] == [
        "thinking_delta",
        "signature_delta",
        "text_delta",
        "text_delta",
        "text_delta",
        "input_json_delta",
        "input_json_delta",
    ]
    assert "".join(d["text"] for d in deltas if d["type"] == "text_delta") == "Hello world"
    assert json.loads("".join(d["partial_json"] for d in deltas[-2:])) == {"command": "ls"}
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts[2] == {"type": "tool_use", "id": "toolu_fixed", "name": "Bash", "input": {}}
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-1] == {"type": "message_stop"}
    assert [t for t, _ in model_server.emitted_log] == ["Hello", " worl", "d"]
    (recorded,) = model_server.requests_for("wire")
    assert (recorded.system_text, recorded.step, recorded.last_user_text) == (
        "SYS",
        0,
        "go [[script:wire]]",
    )


def test_errors_echo_and_exhausted_scripts(model_server: ModelServer) -> None:
    model_server.add_script("fail", [http_error(529, "overloaded_error", "busy")])
    failed = post(model_server, [user("x [[script:fail]]")])
    assert failed.status_code == 529
    assert failed.json() == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "busy"},
    }
    # a retry of the same conversation gets the same step
    assert post(model_server, [user("x [[script:fail]]")]).status_code == 529
    echo = sse_events(post(model_server, [user("hi there")]).text)
    assert "Echo: hi there" in json.dumps(echo)
    model_server.add_script("short", [[text("one")]])
    done = sse_events(post(model_server, [user("[[script:short]]"), assistant()]).text)
    assert "exhausted at step 1" in json.dumps(done)
