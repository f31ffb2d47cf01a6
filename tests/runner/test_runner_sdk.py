"""The real runner with the real SDK and Claude Code CLI against the scripted model server."""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import time
from pathlib import Path

from tests.modelserver.script import http_error, step, text, tool_use
from tests.modelserver.server import ModelServer
from tests.runner.conftest import StartRunner
from tests.runner.harness import Received, base_config

SLEEP_CMD = "python3 -c 'import time; time.sleep(30)'"


def by_type(events: list[Received], type_: str) -> list[Received]:
    return [e for e in events if e.type == type_]


def sleepers() -> list[int]:
    """Return the pids of still-running scripted slow Bash commands."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"time.sleep(30)" in cmdline and b"python3\x00-c" in cmdline:
                pids.append(int(entry.name))
    return pids


async def test_tool_turn_streams_every_block_in_order(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    hello = runner.workspace / "hello.txt"
    todos = [
        {"content": "Say hello", "status": "completed", "activeForm": "Saying hello"},
        {"content": "Write the file", "status": "in_progress", "activeForm": "Writing the file"},
    ]
    marker = model_server.add_script(
        "tools",
        [
            [
                text("Starting."),
                tool_use("Bash", {"command": "echo runner-bash-ok", "description": "x"}),
            ],
            [
                tool_use("Write", {"file_path": str(hello), "content": "hello from the agent\n"}),
                tool_use("TodoWrite", {"todos": todos}),
            ],
            [text("All done here.", chunk=4)],
        ],
    )
    ready = await runner.ready(model_server.base_url)
    assert ready.data["config_id"] == "runner-test"
    assert ready.data["worker_id"] == "worker-test"
    assert ready.data["resumed"] is False
    assert isinstance(ready.data["model"], str) and ready.data["model"]

    turn_id = runner.chat(f"make a file {marker}")
    events = await runner.turn(turn_id)

    assert hello.read_text() == "hello from the agent\n"
    assert events[0].type == "user.message" and events[0].data["text"].startswith("make a file")
    assert events[1].type == "turn.started"
    assert events[-1].type == "turn.completed"
    assert runner.types(events).count("turn.completed") == 1
    tools = [
        (e.type, e.data.get("name"))
        for e in events
        if e.type in ("tool.started", "tool.completed", "todo.updated")
    ]
    assert tools == [
        ("tool.started", "Bash"),
        ("tool.completed", "Bash"),
        ("tool.started", "Write"),
        ("tool.started", "TodoWrite"),
        ("todo.updated", None),
        ("tool.completed", "Write"),
        ("tool.completed", "TodoWrite"),
    ]
    bash_done = by_type(events, "tool.completed")[0].data
    assert bash_done["output"] == "runner-bash-ok"
    assert bash_done["is_error"] is False
    assert bash_done["result"]["stdout"] == "runner-bash-ok"
    todo = by_type(events, "todo.updated")[0].data
    assert [t["content"] for t in todo["todos"]] == ["Say hello", "Write the file"]
    assert todo["todos"][1]["active_form"] == "Writing the file"

    # the last step streamed as deltas before its complete message
    types = runner.types(events)
    final = [e for e in by_type(events, "message") if e.data["text"] == "All done here."]
    assert len(final) == 1
    deltas = [e.data["text"] for e in events[: events.index(final[0])] if e.type == "text.delta"]
    assert deltas[-4:] == ["All ", "done", " her", "e."]
    assert "system" in types  # the CLI's init/status notices are passed on

    done = events[-1].data
    assert done["is_error"] is False and done["interrupted"] is False
    assert done["subtype"] == "success" and done["stop_reason"] == "end_turn"
    assert done["num_turns"] >= 3
    assert done["usage"]["input_tokens"] > 0 and done["usage"]["output_tokens"] > 0
    assert done["sdk_session_id"]
    assert done["cost_usd"] is not None
    assert [r.step for r in model_server.requests_for("tools")] == [0, 1, 2]

    # a worker re-attaching after seq N gets everything after N, then a notice
    after = events[1].envelope.seq
    originals = [r.line for r in runner.received if r.envelope.seq > after]
    count = len(runner.received)
    runner.attach(after)
    notice = await runner.wait_for("system", lambda r: r.data["subtype"] == "runner.attached")
    replayed = runner.received[count : runner.received.index(notice)]
    assert [r.line for r in replayed] == originals
    assert notice.data["data"]["initialized"] is True
    assert notice.data["data"]["sdk_session_id"] == done["sdk_session_id"]

    assert await runner.stop() == 0
    assert runner.received[-1].type == "session.stopped"
    assert runner.bad_lines == []


async def test_multi_turn_keeps_context_on_one_client(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    await runner.ready(model_server.base_url)
    first = await runner.turn(runner.chat("remember the word PAPAYA"))
    second = await runner.turn(runner.chat("which word did I say?"))
    assert by_type(first, "message")[-1].data["text"] == "Echo: remember the word PAPAYA"
    assert by_type(second, "message")[-1].data["text"] == "Echo: which word did I say?"
    last = model_server.model_requests()[-1]
    roles = [m["role"] for m in last.messages if m["role"] != "system"]
    assert roles == ["user", "assistant", "user"]
    assert "remember the word PAPAYA" in last.all_text
    assert "Echo: remember the word PAPAYA" in last.all_text
    sid = first[-1].data["sdk_session_id"]
    assert sid and second[-1].data["sdk_session_id"] == sid
    assert len(by_type(runner.received, "session.ready")) == 1
    assert await runner.stop() == 0


async def test_interrupt_mid_tool_ends_the_turn_and_the_next_chat_works(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    marker = model_server.add_script(
        "slow-tool",
        [[tool_use("Bash", {"command": SLEEP_CMD, "description": "wait"})], [text("never")]],
    )
    await runner.ready(model_server.base_url)
    turn_id = runner.chat(f"wait {marker}")
    started = await runner.wait_for("tool.started")
    assert started.data["name"] == "Bash"
    deadline = time.monotonic() + 10
    while not sleepers() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert sleepers(), "the slow command should be running before the interrupt"
    sent = time.monotonic()
    runner.interrupt()
    events = await runner.turn(turn_id, timeout=10)
    latency = events[-1].at - sent
    done = events[-1].data
    assert done["interrupted"] is True
    assert done["is_error"] is False
    assert latency < 3.0, f"interrupt took {latency:.2f}s"
    assert "error" not in runner.types(events)
    bash = [e for e in by_type(events, "tool.completed") if e.data["name"] == "Bash"]
    assert bash and bash[0].data["is_error"] is True
    deadline = time.monotonic() + 5
    while sleepers() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not sleepers(), "the interrupted command must not keep running"

    runner.interrupt()  # nothing running: a no-op
    after = await runner.turn(runner.chat("are you there?"))
    assert by_type(after, "message")[-1].data["text"] == "Echo: are you there?"
    assert after[-1].data["interrupted"] is False and after[-1].data["is_error"] is False
    assert await runner.stop() == 0


async def test_interrupt_racing_its_chat_still_stops_it(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    marker = model_server.add_script(
        "race-slow",
        [[tool_use("Bash", {"command": SLEEP_CMD, "description": "wait"})], [text("never")]],
    )
    # chat and interrupt while the client is still connecting: the turn never reaches the model
    runner.init(model_server.base_url)
    first = runner.chat(f"wait {marker}")
    runner.interrupt()
    events = await runner.turn(first)
    assert runner.types(events) == ["user.message", "turn.started", "turn.completed"]
    assert events[-1].data["interrupted"] is True
    assert model_server.requests_for("race-slow") == []
    # chat and interrupt in the same read on a connected client
    sent = time.monotonic()
    second = runner.chat(f"wait {marker}")
    runner.interrupt()
    events = await runner.turn(second, timeout=10)
    assert events[-1].data["interrupted"] is True
    assert events[-1].at - sent < 3.0
    deadline = time.monotonic() + 5
    while sleepers() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not sleepers()
    assert await runner.stop() == 0


async def test_interrupt_mid_stream(start_runner: StartRunner, model_server: ModelServer) -> None:
    runner = await start_runner()
    marker = model_server.add_script("slow-text", [step(text("tick " * 200, chunk=5), delay=0.05)])
    await runner.ready(model_server.base_url)
    turn_id = runner.chat(f"talk {marker}")
    await runner.wait_for("text.delta")
    sent = time.monotonic()
    runner.interrupt()
    events = await runner.turn(turn_id, timeout=10)
    assert events[-1].data["interrupted"] is True
    assert events[-1].at - sent < 2.0
    streamed = "".join(e.data["text"] for e in by_type(events, "text.delta"))
    assert 0 < len(streamed) < len("tick " * 200)
    assert await runner.stop() == 0


async def test_sub_agent_runs_in_the_turn_with_its_own_prompt(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    inner = model_server.add_script(
        "sub-inner",
        [
            [tool_use("Bash", {"command": "echo from-the-sub-agent", "description": "x"})],
            [text("sub-agent report: all clear")],
        ],
    )
    outer = model_server.add_script(
        "sub-outer",
        [
            [
                tool_use(
                    "Agent",
                    {
                        "description": "investigate",
                        "prompt": f"investigate the workspace {inner}",
                        "subagent_type": "researcher",
                    },
                )
            ],
            [text("main agent done")],
        ],
    )
    config = base_config(
        allowed_tools=["Bash", "Read", "Task"],
        agents={
            "researcher": {
                "description": "Investigates things",
                "prompt": "You are the RESEARCHER sub-agent (prompt-id 7f3a).",
                "tools": ["Bash", "Read"],
            }
        },
    )
    await runner.ready(model_server.base_url, config)
    events = await runner.turn(runner.chat(f"delegate {outer}"))

    sub_requests = model_server.requests_for("sub-inner")
    assert [r.step for r in sub_requests] == [0, 1]
    assert "You are the RESEARCHER sub-agent (prompt-id 7f3a)." in sub_requests[0].system_text
    assert "investigate the workspace" in sub_requests[0].last_user_text
    assert set(sub_requests[0].tool_names) == {"Bash", "Read"}
    assert "RESEARCHER" not in model_server.requests_for("sub-outer")[0].system_text

    agent_call = [e for e in by_type(events, "tool.started") if e.data["name"] == "Agent"]
    assert len(agent_call) == 1 and agent_call[0].data["parent_tool_use_id"] is None
    agent_id = agent_call[0].data["tool_use_id"]
    nested = [e for e in events if e.data.get("parent_tool_use_id") == agent_id]
    nested_view = [(e.type, e.data.get("name") or e.data.get("text")) for e in nested]
    assert ("tool.started", "Bash") in nested_view
    assert ("tool.completed", "Bash") in nested_view
    assert ("message", "sub-agent report: all clear") in nested_view
    agent_done = [e for e in by_type(events, "tool.completed") if e.data["tool_use_id"] == agent_id]
    assert len(agent_done) == 1
    assert agent_done[0].data["name"] == "Agent"
    assert "sub-agent report: all clear" in agent_done[0].data["output"]
    # foreground: the sub-agent finished before the main agent's answer and the turn's end
    assert events.index(agent_done[0]) < events.index(by_type(events, "message")[-1])
    assert by_type(events, "message")[-1].data["text"] == "main agent done"
    assert events[-1].data["is_error"] is False
    assert await runner.stop() == 0


MCP_SERVER = '''
import os
from mcp.server.mcpserver import MCPServer

app = MCPServer("calc")


@app.tool()
def add(a: int, b: int) -> str:
    """Add two integers."""
    return f"sum={a + b} token={os.environ.get('CALC_TOKEN', 'missing')}"


if __name__ == "__main__":
    app.run()
'''


async def test_mcp_stdio_server_from_config_answers(
    start_runner: StartRunner, model_server: ModelServer, tmp_path: Path
) -> None:
    script = tmp_path / "calc_server.py"
    script.write_text(MCP_SERVER)
    runner = await start_runner()
    marker = model_server.add_script(
        "mcp-add", [[tool_use("mcp__calc__add", {"a": 2, "b": 3})], [text("mcp done")]]
    )
    config = base_config(
        # "default" mode: the call only runs because the runner allows the server's tools
        permission_mode="default",
        allowed_tools=["Read"],
        mcp_servers={
            "calc": {
                "command": sys.executable,
                "args": [str(script)],
                "env": {"CALC_TOKEN": "placeholder"},
            }
        },
    )
    await runner.ready(
        model_server.base_url, config, mcp_env={"calc": {"CALC_TOKEN": "launch-secret-42"}}
    )
    events = await runner.turn(runner.chat(f"add {marker}"))
    (done,) = [e for e in by_type(events, "tool.completed") if e.data["name"] == "mcp__calc__add"]
    assert done.data["is_error"] is False
    assert "sum=5" in done.data["output"]
    # the launch-time credential replaced the preset's placeholder
    assert "token=launch-secret-42" in done.data["output"]
    init = next(e for e in by_type(events, "system") if e.data["subtype"] == "init")
    assert {"name": "calc", "status": "connected"}.items() <= init.data["data"]["mcp_servers"][
        0
    ].items()
    assert await runner.stop() == 0


async def test_model_api_errors_become_error_events(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    err500 = model_server.add_script("err500", [http_error(500, "api_error", "scripted outage")])
    err400 = model_server.add_script(
        "err400", [http_error(400, "invalid_request_error", "scripted bad request")]
    )
    await runner.ready(model_server.base_url)
    for marker, status, reason in (
        (err500, 500, "scripted outage"),
        (err400, 400, "scripted bad request"),
    ):
        events = await runner.turn(runner.chat(f"fail {marker}"))
        (error,) = by_type(events, "error")
        assert reason in error.data["message"]
        assert f"api_error_status: {status}" in error.data["detail"]
        assert error.data["fatal"] is False
        done = events[-1].data
        assert done["is_error"] is True and done["interrupted"] is False
        assert events.index(error) < len(events) - 1
    ok = await runner.turn(runner.chat("and now?"))
    assert by_type(ok, "message")[-1].data["text"] == "Echo: and now?"
    assert ok[-1].data["is_error"] is False
    assert await runner.stop() == 0


async def test_cli_death_is_reported_and_the_next_chat_resumes(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    await runner.ready(model_server.base_url)
    first = await runner.turn(runner.chat("remember the word MANGO"))
    sid = first[-1].data["sdk_session_id"]
    (cli,) = runner.cli_pids()
    os.kill(cli, signal.SIGKILL)
    lost = await runner.wait_for("error", timeout=10)
    assert lost.data["turn_id"] is None
    assert "reconnect" in lost.data["message"]

    events = await runner.turn(runner.chat("what was the word?"))
    ready = by_type(runner.received, "session.ready")
    assert len(ready) == 2 and ready[1].data["resumed"] is True
    assert by_type(events, "message")[-1].data["text"] == "Echo: what was the word?"
    assert "remember the word MANGO" in model_server.model_requests()[-1].all_text
    assert events[-1].data["sdk_session_id"] == sid

    # dying mid-turn: that turn fails with the reason and still completes exactly once
    # SIGKILL orphans the command: a short one, distinct from what sleepers() looks for
    orphan = "python3 -c 'import time; time.sleep(8)'"
    marker = model_server.add_script(
        "death-slow", [[tool_use("Bash", {"command": orphan, "description": "wait"})]]
    )
    turn_id = runner.chat(f"wait {marker}")
    await runner.wait_for("tool.started")
    (cli,) = runner.cli_pids()
    os.kill(cli, signal.SIGKILL)
    events = await runner.turn(turn_id, timeout=10)
    assert runner.types(events)[-2:] == ["error", "turn.completed"]
    assert events[-2].data["code"] == "cli_exited"
    assert "exit code -9" in events[-2].data["message"]
    assert events[-1].data["is_error"] is True
    assert runner.types(events).count("turn.completed") == 1
    again = await runner.turn(runner.chat("still there?"))
    assert again[-1].data["is_error"] is False
    assert await runner.stop() == 0


async def test_restarted_runner_resumes_the_conversation(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    first = await start_runner()
    await first.ready(model_server.base_url)
    done = await first.turn(first.chat("remember the word KIWI"))
    sid = done[-1].data["sdk_session_id"]
    assert await first.stop() == 0

    # same $HOME volume and workspace, as after a container restart
    second = await start_runner(home=first.home, workspace=first.workspace)
    ready = await second.ready(model_server.base_url, resume=sid)
    assert ready.data["resumed"] is True
    events = await second.turn(second.chat("and the word was?"))
    assert events[-1].data["sdk_session_id"] == sid
    assert "remember the word KIWI" in model_server.model_requests()[-1].all_text
    assert await second.stop() == 0

    # a transcript that is gone: say so, then start afresh rather than fail the session
    third = await start_runner()
    third.init(model_server.base_url, resume="00000000-0000-4000-8000-000000000000")
    failed = await third.wait_for("error")
    assert failed.data["code"] == "resume_failed"
    assert "No conversation found" in failed.data["detail"]
    ready = await third.wait_for("session.ready")
    assert ready.data["resumed"] is False
    fresh = await third.turn(third.chat("hello"))
    assert fresh[-1].data["is_error"] is False
    assert await third.stop() == 0


async def test_sigterm_mid_turn_completes_the_turn_then_stops(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    marker = model_server.add_script(
        "term-slow", [[tool_use("Bash", {"command": SLEEP_CMD, "description": "wait"})]]
    )
    await runner.ready(model_server.base_url)
    turn_id = runner.chat(f"wait {marker}")
    queued = runner.chat("queued behind the slow one")
    await runner.wait_for("tool.started")
    cli = runner.cli_pids()
    runner.signal(signal.SIGTERM)
    assert await runner.wait_exit(20) == 0
    tail = runner.received[-1]
    assert (tail.type, tail.data["reason"]) == ("session.stopped", "sigterm")
    done = [e for e in by_type(runner.received, "turn.completed") if e.data["turn_id"] == turn_id]
    assert len(done) == 1 and done[0].data["interrupted"] is True
    cancelled = [
        e for e in by_type(runner.received, "turn.completed") if e.data["turn_id"] == queued
    ]
    assert len(cancelled) == 1 and cancelled[0].data["subtype"] == "cancelled"
    assert not any(Path(f"/proc/{pid}").exists() for pid in cli), "the CLI must exit too"


async def test_text_deltas_stream_as_the_model_writes(
    start_runner: StartRunner, model_server: ModelServer
) -> None:
    runner = await start_runner()
    words = [f"w{i:02d} " for i in range(12)]
    marker = model_server.add_script("latency", [step(*(text(w) for w in words), delay=0.05)])
    await runner.ready(model_server.base_url)
    events = await runner.turn(runner.chat(f"stream {marker}"))
    deltas = by_type(events, "text.delta")
    assert [d.data["text"] for d in deltas] == words
    # each delta reached the worker side while the model was still writing the next ones
    emitted = {text_: at for text_, at in model_server.emitted_log if text_ in words}
    latencies = [d.at - emitted[d.data["text"]] for d in deltas]
    assert deltas[0].at < emitted[words[-1]]
    assert statistics.median(latencies) < 0.5, latencies
