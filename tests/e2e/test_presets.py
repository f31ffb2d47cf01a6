"""Every preset in configs/presets launches in the real agent image and completes one turn.

Real API, NATS, worker, Docker, image, SDK and CLI; only the model is scripted. Each preset's
turn uses what makes that preset what it is (its tools, its data stack, its sub-agents, its MCP
server), so a preset that cannot start or cannot use its own tools fails here. The GitHub MCP
server is also driven directly in the image with no network: a GitHub call must fail at once
with a clear error, never hang.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from tests.modelserver.script import StepSpec, text, tool_use
from tests.modelserver.server import ModelServer
from tests.support.sse import Sse
from tests.support.stack import IMAGE, REPO, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

PRESETS = sorted(p.stem for p in (REPO / "configs" / "presets").glob("*.yaml"))
GITHUB_TOOLS = {"mcp__github__get_pull_request", "mcp__github__search_repositories"}


def key() -> str:
    return f"sk-test-{uuid.uuid4().hex}"


@dataclass
class Run:
    """One preset's session and the events of its turn."""

    stack: Stack
    sid: str
    api_key: str
    tag: str
    events: list[Sse]

    @property
    def model(self) -> ModelServer:
        model: ModelServer = self.stack.model  # type: ignore[attr-defined]
        return model


@dataclass
class Turn:
    """What one preset's turn does: the model's script, launch extras, and what must hold."""

    steps: Callable[[ModelServer, str], list[StepSpec]]
    check: Callable[[Run], None]
    launch: dict[str, Any] = field(default_factory=dict)


def tool_outputs(events: list[Sse]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e.event == "tool.completed":
            out.setdefault(e.data["name"], []).append(e.data)
    return out


# -- code-assistant: runs a command with Bash -------------------------------------------------
def code_steps(_: ModelServer, tag: str) -> list[StepSpec]:
    return [[tool_use("Bash", {"command": f"echo code-{tag} && python3 --version"})], [text("ok")]]


def code_check(run: Run) -> None:
    (bash,) = tool_outputs(run.events)["Bash"]
    assert not bash["is_error"] and f"code-{run.tag}" in bash["output"], bash
    assert "Python 3" in bash["output"]


# -- data-analysis: pandas + matplotlib from the image, a plot saved in the workspace ---------
PLOT = (
    "import pandas as pd, matplotlib.pyplot as plt; "
    "df = pd.DataFrame({'x': [1, 2, 3], 'y': [2, 4, 6]}); print('sum', df.y.sum()); "
    "df.plot(x='x', y='y'); plt.savefig('/workspace/plot.png')"
)


def data_steps(_: ModelServer, tag: str) -> list[StepSpec]:
    return [[tool_use("Bash", {"command": f'python3 -c "{PLOT}"'})], [text("plotted")]]


def data_check(run: Run) -> None:
    (bash,) = tool_outputs(run.events)["Bash"]
    assert not bash["is_error"] and "sum 12" in bash["output"], bash
    with run.stack.client(run.api_key) as c:
        r = c.get(f"/api/files/{run.sid}")
    assert r.status_code == 200, r.text
    assert "plot.png" in json.dumps(r.json())


# -- research-agent: writes its findings to a file --------------------------------------------
def research_steps(_: ModelServer, tag: str) -> list[StepSpec]:
    content = f"# Findings {tag}\n- one\n"
    return [
        [tool_use("Write", {"file_path": "/workspace/findings.md", "content": content})],
        [text("written")],
    ]


def research_check(run: Run) -> None:
    (write,) = tool_outputs(run.events)["Write"]
    assert not write["is_error"], write
    with run.stack.client(run.api_key) as c:
        r = c.get(f"/api/files/{run.sid}/findings.md")
    assert r.status_code == 200 and f"Findings {run.tag}" in r.text, r.text


# -- fullstack-team: the lead delegates to its backend sub-agent ------------------------------
def team_steps(model: ModelServer, tag: str) -> list[StepSpec]:
    inner = model.add_script(f"team-in-{tag}", [[text(f"backend says {tag}")]])
    return [
        [
            tool_use(
                "Agent",
                {"description": "api", "prompt": f"design it {inner}", "subagent_type": "backend"},
            )
        ],
        [text("team done")],
    ]


def team_check(run: Run) -> None:
    events = run.events
    call = next(e for e in events if e.event == "tool.started" and e.data["name"] == "Agent")
    nested = [e for e in events if e.data.get("parent_tool_use_id") == call.data["tool_use_id"]]
    assert any(e.event == "message" and f"backend says {run.tag}" in e.data["text"] for e in nested)
    with run.stack.client() as c:
        prompt = c.get("/api/configs/fullstack-team").json()["agents"]["backend"]["prompt"]
    assert prompt.strip()[:60] in run.model.requests_for(f"team-in-{run.tag}")[0].system_text


# -- github-code-review: its MCP server starts from the image, connected with its tools -------
def github_steps(_: ModelServer, tag: str) -> list[StepSpec]:
    return [[text(f"ready to review {tag}")]]


def github_check(run: Run) -> None:
    init = next(e for e in run.events if e.event == "system" and e.data["subtype"] == "init")
    servers = {s["name"]: s["status"] for s in init.data["data"]["mcp_servers"]}
    assert servers == {"github": "connected"}, init.data
    assert set(init.data["data"]["tools"]) >= GITHUB_TOOLS
    # the model is told of the server's tools in the turn's request (the CLI may defer their
    # schemas behind ToolSearch, so look for the names anywhere in the request)
    request = json.dumps(run.model.requests_for(f"preset-github-code-review-{run.tag}")[0].body)
    assert all(name in request for name in GITHUB_TOOLS)


TURNS: dict[str, Turn] = {
    "code-assistant": Turn(code_steps, code_check),
    "data-analysis": Turn(data_steps, data_check),
    "research-agent": Turn(research_steps, research_check),
    "fullstack-team": Turn(team_steps, team_check),
    "github-code-review": Turn(
        github_steps,
        github_check,
        {"mcp_env": {"github": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_test_not_a_real_token"}}},
    ),
}


def test_every_preset_has_a_turn() -> None:
    assert sorted(TURNS) == PRESETS


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_launches_and_runs_one_turn(stack: Stack, preset: str) -> None:
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    turn = TURNS[preset]
    tag = uuid.uuid4().hex[:8]
    marker = model.add_script(f"preset-{preset}-{tag}", turn.steps(model, tag))
    api_key = key()
    sid = stack.launch(api_key, preset, **turn.launch)
    try:
        events = stack.chat_sse(sid, api_key, f"go {marker}")
        done = events[-1]
        assert done.event == "turn.completed", [e.event for e in events]
        assert done.data["is_error"] is False and done.data["stop_reason"] == "end_turn", done.data
        assert not [e.data for e in events if e.event == "error"]
        with stack.client(api_key) as c:
            info = c.get(f"/api/agents/sessions/{sid}").json()
        assert info["config_id"] == preset and info["turns"] == 1, info
        turn.check(Run(stack, sid, api_key, tag, events))
    finally:
        stack.delete(sid, api_key)


def test_github_call_in_a_session_without_network_fails_clearly(stack: Stack) -> None:
    """The preset with egress none: the agent's GitHub call is an error result, not a hang."""
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    config = yaml.safe_load((REPO / "configs/presets/github-code-review.yaml").read_text())
    config.update(id="github-offline", egress="none")
    tag = uuid.uuid4().hex[:8]
    marker = model.add_script(
        f"gh-offline-{tag}",
        [
            [
                tool_use(
                    "mcp__github__get_pull_request",
                    {"owner": "octo", "repo": "hello", "pull_number": 1},
                )
            ],
            [text("GitHub is unreachable from this session.")],
        ],
    )
    api_key = key()
    sid = stack.launch(
        api_key,
        config=config,
        config_id=None,
        mcp_env={"github": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_test_not_a_real_token"}},
    )
    try:
        t0 = time.monotonic()
        events = stack.chat_sse(sid, api_key, f"review PR 1 {marker}")
        elapsed = time.monotonic() - t0
    finally:
        stack.delete(sid, api_key)
    (call,) = tool_outputs(events)["mcp__github__get_pull_request"]
    assert call["is_error"] is True and "fetch failed" in call["output"], call
    assert events[-1].event == "turn.completed" and events[-1].data["is_error"] is False
    # the model was handed the error as the tool's result and answered
    followup = model.requests_for(f"gh-offline-{tag}")[1].all_text
    assert "fetch failed" in followup
    print(f"in-session offline GitHub call: turn took {elapsed:.1f} s")


# -- the GitHub MCP server itself, offline ------------------------------------------------------
def _rpc(proc: subprocess.Popen[bytes], msg: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(msg).encode() + b"\n")
    proc.stdin.flush()


class Lines:
    """The server's stdout lines, read by a thread so a wait can be bounded."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._q: queue.Queue[bytes] = queue.Queue()
        self._t = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self._t.start()

    def _pump(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._q.put(line)
        self._q.put(b"")

    def join(self) -> None:
        self._t.join(30)

    def answer(self, want_id: int, timeout: float) -> dict[str, Any]:
        """The JSON-RPC answer with id ``want_id``; a hang fails after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._q.get(timeout=left)
            except queue.Empty:
                break
            if not line:
                raise AssertionError("the server exited")
            msg: dict[str, Any] = json.loads(line)
            if msg.get("id") == want_id:
                return msg
        raise AssertionError(f"no answer to request {want_id} within {timeout} s")


# Inside the container, on its own loopback: a proxy that records the request line it gets and
# refuses it, standing in for the sandbox's egress proxy.
PROXY = """
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 3128)); s.listen()
print("proxy listening", file=sys.stderr, flush=True)
while True:
    c, _ = s.accept()
    line = c.makefile("rb").readline().decode().strip()
    print("proxy saw:", line, file=sys.stderr, flush=True)
    c.sendall(b"HTTP/1.1 403 Forbidden\\r\\ncontent-length: 0\\r\\n\\r\\n"); c.close()
"""


@contextmanager
def github_server(
    stderr: IO[bytes] | int, *, proxy: bool
) -> Iterator[tuple[subprocess.Popen[bytes], Lines]]:
    """The image's mcp-server-github, locked down like a session, with no network at all."""
    name = f"agc-test-gh-{uuid.uuid4().hex[:8]}"
    env = ["-e", "GITHUB_PERSONAL_ACCESS_TOKEN=ghp_test_not_a_real_token"]
    cmd = ["mcp-server-github"]
    if proxy:
        env += ["-e", "HTTPS_PROXY=http://127.0.0.1:3128", "-e", "NO_PROXY=localhost,127.0.0.1"]
        cmd = ["sh", "-c", 'python3 -c "$0" & exec mcp-server-github', PROXY]
    with subprocess.Popen(
        ["docker", "run", "--rm", "-i", "--name", name, "--network", "none", "--read-only",
         "--user", "1000", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
         "--tmpfs", "/tmp", *env, IMAGE, *cmd],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
    ) as proc:  # fmt: skip
        lines = Lines(proc)
        try:
            _rpc(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2024-11-05", "capabilities": {},
                "clientInfo": {"name": "test", "version": "0"}}})  # fmt: skip
            init = lines.answer(1, 60)
            assert init["result"]["serverInfo"]["name"] == "github-mcp-server"
            _rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            yield proc, lines
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
            lines.join()


def call_get_pull_request(proc: subprocess.Popen[bytes], lines: Lines) -> dict[str, Any]:
    _rpc(proc, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": "get_pull_request",
        "arguments": {"owner": "octo", "repo": "hello", "pull_number": 1}}})  # fmt: skip
    return lines.answer(3, 30)


def test_github_server_without_network_fails_a_call_at_once() -> None:
    """No network, no proxy: tools are listed, and a call errors clearly instead of hanging."""
    with github_server(subprocess.DEVNULL, proxy=False) as (proc, lines):
        _rpc(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        tools = {t["name"] for t in lines.answer(2, 30)["result"]["tools"]}
        assert {"get_pull_request", "get_pull_request_files", "create_pull_request_review"} <= tools
        t0 = time.monotonic()
        answer = call_get_pull_request(proc, lines)
        elapsed = time.monotonic() - t0
    # a JSON-RPC error, which the CLI hands the model as an is_error tool result
    assert answer["error"]["message"] == "fetch failed", answer
    print(f"offline GitHub call failed after {elapsed * 1000:.0f} ms: {answer['error']}")


def test_github_server_goes_through_the_egress_proxy(tmp_path: Path) -> None:
    """With HTTPS_PROXY set (as the runner sets it in a sandbox), GitHub is asked for through it."""
    log = tmp_path / "stderr"
    with log.open("wb") as stderr, github_server(stderr, proxy=True) as (proc, lines):
        answer = call_get_pull_request(proc, lines)
    assert "error" in answer, answer
    seen = log.read_text()
    assert "proxy saw: CONNECT api.github.com:443" in seen, seen
