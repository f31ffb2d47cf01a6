"""The warm pool on the real platform: real Docker sandboxes, the real runner, SDK and CLI.

One stack whose worker keeps one warm slot of ``code-assistant``: a launch of that preset is
served by a pre-started sandbox (its CLI already running) and runs a real turn through the
model gateway bound at claim time; a second session on the next slot sees nothing of the
first (workspace, home, /tmp, processes).
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from tests.modelserver.script import text, tool_use
from tests.modelserver.server import ModelServer
from tests.support.stack import Stack, running_stack
from tests.support.wait import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

PRESET = "code-assistant"


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    model = ModelServer("127.0.0.1", 0).start()
    try:
        with running_stack(tmp_path_factory.mktemp("pool"), model.base_url, workers=0) as s:
            s.start_worker(AGC_POOL_SIZE="1", AGC_POOL_CONFIGS=PRESET, AGC_POOL_PAUSE="0.2")
            s.wait_workers(1)
            s.model = model  # type: ignore[attr-defined]
            yield s
    finally:
        model.stop()


def key() -> str:
    return f"sk-test-{uuid.uuid4().hex}"


def slots_offered(stack: Stack) -> int:
    """Slots the worker has put in the ready list so far (it logs each once offered).

    Not /health's figure: a heartbeat read just after a claim may still count the slot.
    """
    return sum(
        path.read_text(errors="replace").count("warm slot ready")
        for path in stack.tmp.glob("worker-*.log")
    )


def launch(stack: Stack, api_key: str) -> dict[str, Any]:
    """Launch the pooled preset once a slot nobody claimed yet is ready (one at a time here)."""
    claimed = getattr(stack, "claimed", 0)
    wait_until(lambda: slots_offered(stack) > claimed, 180, "a warm slot")
    with stack.client(timeout=120) as c:
        r = c.post("/api/agents/launch", json={"api_key": api_key, "config_id": PRESET})
    assert r.status_code == 200, f"{r.status_code} {r.text}\n{stack.all_logs()[-4000:]}"
    body: dict[str, Any] = r.json()
    stack.claimed = claimed + bool(body["warm"])  # type: ignore[attr-defined]
    return body


def bash(stack: Stack, sid: str, api_key: str, command: str) -> str:
    """Run one Bash command as the agent (the model asks for it) and return its output."""
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    marker = model.add_script(
        f"bash-{uuid.uuid4().hex[:10]}", [[tool_use("Bash", {"command": command})], [text("ok")]]
    )
    events = stack.chat_sse(sid, api_key, f"run it {marker}")
    done = [e for e in events if e.event == "tool.completed"]
    assert len(done) == 1, [e.event for e in events]
    assert not done[0].data["is_error"], done[0].data
    return str(done[0].data["output"])


def container(sid: str) -> Any:
    return docker.from_env().containers.get(f"agc-{sid}")


def test_a_warm_launch_binds_a_prestarted_sandbox(pooled: Stack) -> None:
    api_key = key()
    body = launch(pooled, api_key)
    sid = body["session_id"]
    assert body["warm"] is True and body["status"] == "running"
    c = container(sid)
    assert c.labels.get("agc.pool", "").startswith(f"{PRESET}@")
    # The model call goes through the gateway, bound to this session at claim time.
    out = bash(pooled, sid, api_key, "id -u && echo warm-ok")
    assert out.split() == ["1000", "warm-ok"]
    with pooled.client(api_key, timeout=10) as cl:
        info = cl.get(f"/api/agents/sessions/{sid}").json()
    assert info["warm"] is True and info["launch_ms"] > 0
    pooled.delete(sid, api_key)


def test_nothing_of_an_earlier_session_shows_in_the_next_slot(pooled: Stack) -> None:
    mark = f"leak-{uuid.uuid4().hex[:12]}"
    key_a = key()
    a = launch(pooled, key_a)["session_id"]
    a_container = container(a).id
    bash(
        pooled,
        a,
        key_a,
        f"echo {mark} > /workspace/{mark}.txt && echo {mark} > $HOME/{mark}.txt && "
        f"echo {mark} > /tmp/{mark}.txt && "
        f"(nohup python3 -c \"import time; M='{mark}'; time.sleep(900)\" >/dev/null 2>&1 &) && "
        "echo planted",
    )
    pooled.delete(a, key_a)
    wait_until(lambda: _gone(a), 60, "the first session's container to go")

    key_b = key()
    body = launch(pooled, key_b)
    b = body["session_id"]
    assert body["warm"] is True and b != a, pooled.all_logs()[-6000:]
    assert container(b).id != a_container
    seen = bash(
        pooled,
        b,
        key_b,
        "ls -A /workspace $HOME /tmp; ps -eo args; grep -rs leak- /workspace $HOME /tmp; true",
    )
    assert mark not in seen, seen
    # And as the engine sees the container, not only as the agent does.
    exec_out = (
        container(b)
        .exec_run(["sh", "-c", "ls -A /workspace /home/agent /tmp; ps -eo args"], user="0")
        .output.decode()
    )
    assert mark not in exec_out, exec_out
    pooled.delete(b, key_b)


def _gone(sid: str) -> bool:
    try:
        container(sid)
    except docker.errors.NotFound:
        return True
    return False


def test_a_preset_without_a_pool_launches_cold(pooled: Stack) -> None:
    api_key = key()
    with pooled.client(timeout=120) as c:
        r = c.post("/api/agents/launch", json={"api_key": api_key, "config_id": "research-agent"})
    assert r.status_code == 200, r.text
    assert r.json()["warm"] is False
    assert "agc.pool" not in container(r.json()["session_id"]).labels
    pooled.delete(r.json()["session_id"], api_key)


def test_a_slot_made_by_one_worker_serves_a_launch_another_worker_takes(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Slots are shared by every worker on the engine: the claiming worker serves the slot's
    gateway from then on (the maker lets its sockets go), so the session's model calls work.

    The maker is paused (SIGSTOP) once its slot is ready, so only the other worker can take
    the launch; then it resumes and hands the slot's sockets over. (Before, the session's
    model calls reached the maker's gateway, which knew nothing of the binding: chats hung.)
    """
    model = ModelServer("127.0.0.1", 0).start()
    try:
        with running_stack(tmp_path_factory.mktemp("pool2"), model.base_url, workers=0) as s:
            pooled = {"AGC_POOL_SIZE": "1", "AGC_POOL_CONFIGS": PRESET, "AGC_POOL_PAUSE": "0.2"}
            maker = s.start_worker(**pooled)
            s.wait_workers(1)
            s.model = model  # type: ignore[attr-defined]
            # The maker's slot is the oldest in the ready list: the launch claims it.
            wait_until(lambda: slots_offered(s) > 0, 180, "the maker's slot")
            taker = s.start_worker(**pooled)
            s.wait_workers(2)
            s.workers[maker].send_signal(signal.SIGSTOP)
            try:
                api_key = key()
                body = launch(s, api_key)
                sid = body["session_id"]
                assert body["warm"] is True, body
                with s.client(api_key, timeout=10) as c:
                    info = c.get(f"/api/agents/sessions/{sid}").json()
                assert info["owner_worker"] == taker != maker, info
                # The model call goes through the taker's gateway, bound at claim time.
                assert bash(s, sid, api_key, "echo taken-ok").split() == ["taken-ok"]
            finally:
                s.workers[maker].send_signal(signal.SIGCONT)
            # The maker, running again, lets the slot's sockets go; the taker's still answer.
            wait_until(lambda: "handed over" in s.log(f"worker-{maker}"), 60, "the hand-over")
            assert bash(s, sid, api_key, "echo still-ok").split() == ["still-ok"]
            s.delete(sid, api_key)
    finally:
        model.stop()
