"""Agents end to end: the real API, NATS, worker, Docker, agent image, SDK and CLI.

Only the model API is scripted (tests/modelserver), speaking the real SSE wire protocol.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from redis import Redis

from tests.modelserver.script import http_error, text, tool_use
from tests.modelserver.server import ModelServer
from tests.support.sse import Sse, event_ids, iter_sse
from tests.support.stack import Stack, running_stack
from tests.support.wait import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def key() -> str:
    return f"sk-test-{uuid.uuid4().hex}"


def types(events: list[Sse]) -> list[str]:
    return [e.event for e in events]


def container(sid: str) -> Any:
    return docker.from_env().containers.get(f"agc-{sid}")


def exec_in(sid: str, cmd: str) -> tuple[int, str]:
    code, out = container(sid).exec_run(["bash", "-lc", cmd], user="1000")
    return int(code), out.decode(errors="replace")


@pytest.fixture
def session(stack: Stack) -> Iterator[tuple[str, str]]:
    """A running code-assistant session and its key; stopped afterwards."""
    api_key = key()
    sid = stack.launch(api_key)
    yield sid, api_key
    stack.delete(sid, api_key)


def test_chat_streams_tool_calls_in_order_and_the_file_is_real(
    stack: Stack, session: tuple[str, str]
) -> None:
    sid, api_key = session
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    marker = model.add_script(
        f"tools-{sid}",
        [
            [tool_use("Bash", {"command": "echo from-bash > made-by-bash.txt && id -u"})],
            [tool_use("Write", {"file_path": "/workspace/notes.md", "content": "# Notes\nhi\n"})],
            [
                tool_use(
                    "TodoWrite",
                    {
                        "todos": [
                            {
                                "content": "write notes",
                                "status": "completed",
                                "activeForm": "Writing notes",
                            },
                            {
                                "content": "review",
                                "status": "in_progress",
                                "activeForm": "Reviewing",
                            },
                        ]
                    },
                )
            ],
            [text("All done.", chunk=3)],
        ],
    )
    events = stack.chat_sse(sid, api_key, f"make notes {marker}")
    seq = types(events)
    assert seq[0] == "user.message" and seq[-1] == "turn.completed"
    tools = [
        (e.event, e.data.get("name"))
        for e in events
        if e.event in ("tool.started", "tool.completed")
    ]
    assert tools == [
        ("tool.started", "Bash"),
        ("tool.completed", "Bash"),
        ("tool.started", "Write"),
        ("tool.completed", "Write"),
        ("tool.started", "TodoWrite"),
        ("tool.completed", "TodoWrite"),
    ]
    bash_done = next(e for e in events if e.event == "tool.completed" and e.data["name"] == "Bash")
    assert bash_done.data["output"].strip().endswith("1000") and not bash_done.data["is_error"]
    todos = next(e for e in events if e.event == "todo.updated").data["todos"]
    assert [(t["content"], t["status"]) for t in todos] == [
        ("write notes", "completed"),
        ("review", "in_progress"),
    ]
    assert "text.delta" in seq and events[-2].event in ("message", "session.status")
    final_text = [e.data["text"] for e in events if e.event == "message"]
    assert final_text[-1] == "All done."
    ids = event_ids(events)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    done = events[-1].data
    assert done["is_error"] is False and done["num_turns"] >= 4 and done["usage"]["output_tokens"]
    # The files are really in the session's workspace, owned by the agent user.
    assert exec_in(sid, "cat /workspace/notes.md") == (0, "# Notes\nhi\n")
    assert exec_in(sid, "cat made-by-bash.txt && stat -c %u notes.md") == (0, "from-bash\n1000\n")
    # Usage and turn counts reached the session record.
    with stack.client(api_key) as c:
        info = c.get(f"/api/agents/sessions/{sid}").json()
    assert info["turns"] == 1 and info["usage"]["output_tokens"] > 0 and info["status"] == "idle"
    assert info["resources"]["memory_limit_bytes"] == 4 * 1024**3


def test_json_chat_and_multi_turn_context(stack: Stack, session: tuple[str, str]) -> None:
    sid, api_key = session
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    marker = model.add_script(
        f"second-{sid}",
        [[tool_use("Bash", {"command": "echo 42"})], [text("The number was 42.")]],
    )
    with stack.client(api_key) as c:
        first = c.post(f"/api/agents/{sid}/chat", json={"message": "remember the number 42"})
        assert first.status_code == 200, first.text
        assert first.json()["text"] == "Echo: remember the number 42"
        second = c.post(f"/api/agents/{sid}/chat", json={"message": f"what was it? {marker}"})
    body = second.json()
    assert body["text"] == "The number was 42." and body["is_error"] is False
    assert [(t["name"], t["output"].strip()) for t in body["tool_calls"]] == [("Bash", "42")]
    assert body["usage"]["output_tokens"] > 0 and second.headers["X-Turn-Id"] == body["turn_id"]
    # The model saw the first exchange in the second turn's request: context holds.
    history = model.requests_for(f"second-{sid}")[0].all_text
    assert "remember the number 42" in history and "Echo: remember the number 42" in history


def test_interrupt_mid_tool_then_chat_again(stack: Stack, session: tuple[str, str]) -> None:
    sid, api_key = session
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    marker = model.add_script(
        f"slow-{sid}",
        [
            [
                tool_use(
                    "Bash",
                    {"command": "python3 -c 'import time; time.sleep(60)'", "timeout": 120000},
                )
            ],
            [text("never reached")],
        ],
    )
    events: list[Sse] = []
    started = threading.Event()

    def chat() -> None:
        with (
            stack.client(api_key) as c,
            c.stream(
                "POST",
                f"/api/agents/{sid}/chat",
                json={"message": f"sleep {marker}"},
                headers={"Accept": "text/event-stream"},
            ) as r,
        ):
            for ev in iter_sse(r):
                events.append(ev)
                if ev.event == "tool.started":
                    started.set()

    t = threading.Thread(target=chat)
    t.start()
    assert started.wait(60), types(events)
    t0 = time.monotonic()
    with stack.client(api_key) as c:
        assert c.post(f"/api/agents/{sid}/interrupt").status_code == 202
    t.join(30)
    assert not t.is_alive(), "the turn did not end after the interrupt"
    assert time.monotonic() - t0 < 15
    assert events[-1].event == "turn.completed" and events[-1].data["interrupted"] is True
    assert "never reached" not in json.dumps([e.data for e in events])
    with stack.client(api_key) as c:
        after = c.post(f"/api/agents/{sid}/chat", json={"message": "still there?"}).json()
    assert after["text"] == "Echo: still there?" and after["is_error"] is False


def test_sub_agent_runs_with_its_own_prompt(stack: Stack) -> None:
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    tag = uuid.uuid4().hex[:8]
    inner = model.add_script(f"sub-in-{tag}", [[text("sub-agent says: all clear")]])
    outer = model.add_script(
        f"sub-out-{tag}",
        [
            [
                tool_use(
                    "Agent",
                    {
                        "description": "check",
                        "prompt": f"check it {inner}",
                        "subagent_type": "frontend",
                    },
                )
            ],
            [text("main agent done")],
        ],
    )
    api_key = key()
    sid = stack.launch(api_key, "fullstack-team")
    try:
        events = stack.chat_sse(sid, api_key, f"delegate {outer}")
    finally:
        stack.delete(sid, api_key)
    sub_req = model.requests_for(f"sub-in-{tag}")[0]
    with stack.client() as c:
        frontend_prompt = c.get("/api/configs/fullstack-team").json()["agents"]["frontend"][
            "prompt"
        ]
    assert frontend_prompt.strip()[:60] in sub_req.system_text
    call = next(e for e in events if e.event == "tool.started" and e.data["name"] == "Agent")
    nested = [e for e in events if e.data.get("parent_tool_use_id") == call.data["tool_use_id"]]
    assert any(e.event == "message" and "all clear" in e.data["text"] for e in nested)
    assert [e.data["text"] for e in events if e.event == "message"][-1] == "main agent done"


MCP_SERVER = """
import os
from mcp.server.mcpserver import MCPServer
app = MCPServer("calc")

@app.tool()
def add(a: int, b: int) -> str:
    '''Add two integers.'''
    return f"sum={a + b} token={os.environ.get('CALC_TOKEN', 'missing')}"

app.run()
"""


def test_mcp_stdio_server_from_config_answers_with_launch_credentials(stack: Stack) -> None:
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    marker = model.add_script(
        f"mcp-{uuid.uuid4().hex[:8]}",
        [[tool_use("mcp__calc__add", {"a": 2, "b": 3})], [text("ok")]],
    )
    config = {
        "id": "calc-agent",
        "name": "Calc",
        "allowed_tools": ["Read"],
        "permission_mode": "default",
        "mcp_servers": {
            "calc": {"command": "python3", "args": ["-c", MCP_SERVER], "env": {"CALC_TOKEN": ""}}
        },
    }
    api_key = key()
    with stack.client() as c:
        bad = c.post(
            "/api/agents/launch",
            json={"api_key": api_key, "config": config, "mcp_env": {"calc": {"HOME": "/"}}},
        )
        assert bad.status_code == 400
        r = c.post(
            "/api/agents/launch",
            json={
                "api_key": api_key,
                "config": config,
                "mcp_env": {"calc": {"CALC_TOKEN": "tok-77"}},
            },
        )
    assert r.status_code == 200, r.text
    sid = r.json()["session_id"]
    try:
        events = stack.chat_sse(sid, api_key, f"add {marker}")
    finally:
        stack.delete(sid, api_key)
    done = next(e for e in events if e.event == "tool.completed")
    assert done.data["name"] == "mcp__calc__add" and not done.data["is_error"]
    assert "sum=5" in done.data["output"] and "token=tok-77" in done.data["output"]


def test_container_is_locked_down_with_the_configs_limits(
    stack: Stack, session: tuple[str, str]
) -> None:
    sid, _ = session
    attrs = container(sid).attrs
    host = attrs["HostConfig"]
    # The runner is uid 0 with only SETUID/SETGID/KILL (to start and signal the agent as
    # 1000); the agent's own processes run as 1000 with no capabilities (docs/sandbox.md).
    assert attrs["Config"]["User"] == "0:0" and host["NetworkMode"] == "none"
    assert sorted(c.removeprefix("CAP_") for c in host["CapAdd"]) == ["KILL", "SETGID", "SETUID"]
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True and host["Privileged"] is False
    assert host["Memory"] == 4 * 1024**3 and host["CpuQuota"] == 200000
    assert host["CpuPeriod"] == 100000 and host["PidsLimit"] == 256
    assert "/tmp" in host["Tmpfs"]
    assert attrs["Config"]["Labels"]["agc.session"] == sid
    assert not any("sk-test" in e for e in attrs["Config"]["Env"])
    _code, out = exec_in(
        sid,
        "id -u; grep CapEff /proc/self/status; grep CapEff /proc/1/status; touch /usr/x 2>&1; echo $?",
    )
    lines = out.splitlines()
    assert lines[0] == "1000" and lines[1].split()[1] == "0000000000000000"
    assert lines[2].split()[1] == "00000000000000e0"  # PID 1 (tini, root): KILL SETGID SETUID
    assert "Read-only file system" in out and lines[-1] == "1"


def test_session_routes_require_the_launch_key(stack: Stack, session: tuple[str, str]) -> None:
    sid, api_key = session
    routes = [
        ("GET", f"/api/agents/sessions/{sid}", None),
        ("GET", f"/api/agents/{sid}/events", None),
        ("POST", f"/api/agents/{sid}/chat", {"message": "hi"}),
        ("POST", f"/api/agents/{sid}/interrupt", None),
        ("DELETE", f"/api/agents/sessions/{sid}", None),
    ]
    with stack.client() as anon, stack.client("sk-someone-else") as other:
        for method, path, body in routes:
            assert anon.request(method, path, json=body).status_code == 401, path
            r = other.request(method, path, json=body)
            assert r.status_code == 403 and r.json()["error"] == "forbidden", path
        mine = other.get("/api/agents/sessions").json()
        assert sid not in [s["session_id"] for s in mine["sessions"]]
    with stack.client(api_key) as c:
        assert sid in [s["session_id"] for s in c.get("/api/agents/sessions").json()["sessions"]]
        assert c.get("/api/agents/sessions/conv-0123456789abcdef").status_code == 404


def test_model_api_error_reaches_the_client(stack: Stack, session: tuple[str, str]) -> None:
    sid, api_key = session
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    marker = model.add_script(
        f"err-{sid}", [http_error(400, "invalid_request_error", "scripted failure XYZZY")]
    )
    events = stack.chat_sse(sid, api_key, f"fail {marker}")
    errors = [e for e in events if e.event == "error"]
    assert errors, types(events)
    assert "XYZZY" in json.dumps([e.data for e in errors]) or "400" in json.dumps(
        [e.data for e in errors]
    )
    assert events[-1].event == "turn.completed" and events[-1].data["is_error"] is True
    with stack.client(api_key) as c:
        assert c.post(f"/api/agents/{sid}/chat", json={"message": "ok?"}).json()["text"] == (
            "Echo: ok?"
        )


def test_events_replay_with_last_event_id_and_direct_nats_subscribers(
    stack: Stack, session: tuple[str, str]
) -> None:
    import asyncio

    import nats

    sid, api_key = session
    seen_on_nats: list[dict[str, Any]] = []
    subscribed = threading.Event()
    done = threading.Event()

    def subscriber() -> None:
        async def main() -> None:
            assert stack.nats is not None
            nc = await nats.connect(stack.nats.url)
            sub = await nc.subscribe(f"agc.evt.{sid}")
            subscribed.set()
            while not done.is_set():
                try:
                    msg = await sub.next_msg(timeout=0.2)
                except Exception:  # noqa: S112 - timeout: check `done` again
                    continue
                seen_on_nats.append(json.loads(msg.data))
            await nc.close()

        asyncio.run(main())

    t = threading.Thread(target=subscriber)
    t.start()
    assert subscribed.wait(10)
    chat_events = stack.chat_sse(sid, api_key, "hello nats")
    # The worker's "idle" status follows turn.completed on the subject: wait for it.
    wait_until(
        lambda: (
            any(e["type"] == "turn.completed" for e in seen_on_nats)
            and seen_on_nats[-1]["type"] == "session.status"
        ),
        30,
        "the turn's trailing status on NATS",
    )
    done.set()
    t.join(10)
    # The worker's "running" status for the launch may land after we subscribed: the chat's
    # own events start at its user.message.
    while seen_on_nats and seen_on_nats[0]["type"] == "session.status":
        seen_on_nats.pop(0)
    # A plain nats-py subscriber saw exactly what the SSE client saw (the chat stream ends
    # at turn.completed; the worker's "idle" status event follows it on the subject).
    assert [(e["type"], e["ts"]) for e in seen_on_nats[: len(chat_events)]] == [
        (e.data["type"], e.data["ts"]) for e in chat_events
    ]
    assert [e["type"] for e in seen_on_nats[len(chat_events) :]] == ["session.status"]

    def read_events(last_id: int | None) -> list[Sse]:
        headers = {"Last-Event-ID": str(last_id)} if last_id is not None else {}
        out: list[Sse] = []
        with (
            stack.client(api_key, timeout=30) as c,
            c.stream("GET", f"/api/agents/{sid}/events", headers=headers) as r,
        ):
            assert r.status_code == 200
            for ev in iter_sse(r):
                out.append(ev)
                if ev.event == "turn.completed":
                    break
        return out

    everything = read_events(None)
    assert everything[0].event == "session.ready" and everything[-1].event == "turn.completed"
    assert everything[-len(chat_events) :] == chat_events
    cut = everything[3].id
    rest = read_events(cut)
    assert [e.id for e in rest] == [e.id for e in everything[4:]]


def redis_values(r: Redis) -> bytes:
    """Every hash field and string value in Redis, raw: what a copy of the data would show."""
    out = bytearray()
    for key in r.keys("*"):
        kind = _raw(r.type(key))
        if kind == b"hash":
            for field, value in r.hgetall(key).items():
                out += _raw(field) + b"=" + _raw(value) + b"\n"
        elif kind == b"string":
            out += _raw(r.get(key)) + b"\n"
    return bytes(out)


def _raw(value: bytes | str | None) -> bytes:
    # redis-py types replies as bytes | str (it depends on decode_responses); ours are bytes.
    return value.encode() if isinstance(value, str) else value or b""


def test_api_key_is_never_stored_logged_or_streamed_in_the_clear(stack: Stack) -> None:
    secret = f"sk-ant-SECRET-{uuid.uuid4().hex}"
    sid = stack.launch(secret)
    stack.chat_sse(sid, secret, "hello")
    stack.delete(sid, secret)
    # Scan only once the worker has finished with the session (its last log line about it).
    wait_until(
        lambda: any(
            "session stopped" in line and sid in line
            for p in stack.tmp.glob("worker-*.log")
            for line in p.read_text(errors="replace").splitlines()
        ),
        30,
        "the worker to finish the stop",
    )
    assert stack.redis is not None and stack.nats is not None
    assert secret.encode() not in redis_values(Redis.from_url(stack.redis.url))
    for path in Path(stack.redis.extra["socket"]).parent.glob("**/*.aof"):
        assert secret.encode() not in path.read_bytes()
    for path in stack.tmp.glob("**/*"):
        if path.is_file() and path.suffix in (".log", ".blk", ".aof", ".idx", ".dat"):
            assert secret.encode() not in path.read_bytes(), path


def test_delete_removes_container_and_volumes(stack: Stack) -> None:
    api_key = key()
    sid = stack.launch(api_key)
    client = docker.from_env()
    assert client.containers.get(f"agc-{sid}")
    with stack.client(api_key) as c:
        r = c.delete(f"/api/agents/sessions/{sid}")
        assert r.status_code == 200 and r.json()["status"] == "stopped"
        assert c.get(f"/api/agents/sessions/{sid}").json()["status"] == "stopped"
        assert c.post(f"/api/agents/{sid}/chat", json={"message": "x"}).status_code == 409
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(f"agc-{sid}")
    names = {v.name for v in client.volumes.list()}
    assert f"agc-ws-{sid}" not in names and f"agc-home-{sid}" not in names


def test_launch_fails_clearly_when_the_container_cannot_start(
    tmp_path: Path, model_server: ModelServer
) -> None:
    with (
        running_stack(
            tmp_path, model_server.base_url, extra_env={"AGC_AGENT_IMAGE": "agcluster-missing:none"}
        ) as s,
        s.client() as c,
    ):
        r = c.post("/api/agents/launch", json={"api_key": "k", "config_id": "code-assistant"})
        assert r.status_code == 502, r.text
        body = r.json()
        assert "agcluster-missing:none" in body["detail"] and body["session_id"]
        with httpx.Client(base_url=s.base_url, headers={"Authorization": "Bearer k"}) as k:
            info = k.get(f"/api/agents/sessions/{body['session_id']}").json()
        assert info["status"] == "failed" and "image" in info["error"]


def test_a_retried_chat_with_an_idempotency_key_runs_once(
    stack: Stack, session: tuple[str, str]
) -> None:
    sid, api_key = session
    headers = {"Idempotency-Key": f"retry-{uuid.uuid4().hex}"}
    with stack.client(api_key) as c:
        first = c.post(f"/api/agents/{sid}/chat", json={"message": "only once"}, headers=headers)
        again = c.post(f"/api/agents/{sid}/chat", json={"message": "only once"}, headers=headers)
        other = c.post(f"/api/agents/{sid}/chat", json={"message": "only once"})
        bad = c.post(
            f"/api/agents/{sid}/chat",
            json={"message": "x"},
            headers={"Idempotency-Key": "no spaces allowed"},
        )
        hist = c.get(f"/api/agents/{sid}/history").json()
    assert first.json()["turn_id"] == again.json()["turn_id"] != other.json()["turn_id"]
    assert first.json()["text"] == again.json()["text"] == "Echo: only once"
    assert bad.status_code == 400
    assert [t["user"] for t in hist["turns"]] == ["only once", "only once"]


def test_sub_agents_may_use_their_own_tools_but_the_lead_may_not(stack: Stack) -> None:
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    tag = uuid.uuid4().hex[:8]
    inner = model.add_script(
        f"sub-bash-{tag}",
        [
            [tool_use("Bash", {"command": "python3 -c 'print(\"sub-bash-ok\")'"})],
            [text("backend done")],
        ],
    )
    outer = model.add_script(
        f"lead-{tag}",
        [
            # Not a read-only command: the CLI would auto-approve a plain echo.
            [tool_use("Bash", {"command": "python3 -c 'print(\"lead-bash\")'"})],
            [
                tool_use(
                    "Agent",
                    {
                        "description": "build",
                        "prompt": f"build it {inner}",
                        "subagent_type": "backend",
                    },
                )
            ],
            [text("lead done")],
        ],
    )
    api_key = key()
    sid = stack.launch(api_key, "fullstack-team")
    try:
        events = stack.chat_sse(sid, api_key, f"go {outer}")
    finally:
        stack.delete(sid, api_key)
    bash = [e for e in events if e.event == "tool.completed" and e.data["name"] == "Bash"]
    lead = [e for e in bash if not e.data["parent_tool_use_id"]]
    sub = [e for e in bash if e.data["parent_tool_use_id"]]
    assert len(lead) == 1 and lead[0].data["is_error"] and "lead-bash" not in lead[0].data["output"]
    assert len(sub) == 1 and not sub[0].data["is_error"], sub[0].data["output"]
    assert sub[0].data["output"].strip() == "sub-bash-ok"
