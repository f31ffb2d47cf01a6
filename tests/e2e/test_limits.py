"""Operator limits and storage_limit against the real stack (API, a worker, Docker, the image).

One stack with small limits: one live session per key, a worker with room for two sessions.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import docker
import httpx
import nats
import pytest

from broker import subjects
from tests.modelserver.server import ModelServer
from tests.support.sse import iter_sse
from tests.support.stack import Stack, running_stack
from tests.support.wait import wait_until

MiB = 1 << 20
SMALL = {
    "id": "small-disk",
    "name": "Small disk",
    "allowed_tools": ["Read", "Bash"],
    "resource_limits": {"storage_limit": "256m", "memory_limit": "1g"},
}


@pytest.fixture(scope="module")
def limited(
    tmp_path_factory: pytest.TempPathFactory, shared_model_server: ModelServer
) -> Iterator[Stack]:
    env = {"AGC_MAX_SESSIONS_PER_KEY": "1", "AGC_MAX_SESSIONS": "2", "AGC_RETRY_AFTER": "7"}
    with running_stack(
        tmp_path_factory.mktemp("limits"), shared_model_server.base_url, extra_env=env
    ) as s:
        yield s


def _launch(s: Stack, key: str, **body: Any) -> httpx.Response:
    with s.client(timeout=120) as c:
        return c.post("/api/agents/launch", json={"api_key": key, **body})


def _containers(s: Stack) -> dict[str, str]:
    """Session id -> container status of this stack's agent containers."""
    client = docker.from_env(timeout=30)
    out = {}
    for c in client.containers.list(all=True, filters={"label": f"agc.cluster={s.cluster}"}):
        if c.labels.get("agc.session") and not c.labels.get("agc.pool"):
            out[c.labels["agc.session"]] = c.status
    return out


def test_limits_a_key_and_answers_at_once_when_every_worker_is_full(limited: Stack) -> None:
    a, b, c = (f"sk-ant-{n}-{uuid.uuid4().hex[:8]}" for n in "abc")
    first = _launch(limited, a, config_id="code-assistant")
    assert first.status_code == 200, first.text
    # The same key's second live session is over AGC_MAX_SESSIONS_PER_KEY.
    over = _launch(limited, a, config_id="code-assistant")
    assert over.status_code == 429, over.text
    assert over.json()["limit"] == "max_sessions_per_key"
    assert over.headers["retry-after"] == "7"
    second = _launch(limited, b, config_id="code-assistant")
    assert second.status_code == 200, second.text
    # The worker now runs max_sessions: the next launch is answered within a second.
    t0 = time.monotonic()
    full = _launch(limited, c, config_id="code-assistant")
    assert time.monotonic() - t0 < 1.0
    assert full.status_code == 503 and full.json()["reason"] == "no_capacity", full.text
    assert int(full.headers["retry-after"]) > 0
    # ... and it never starts later, not even once room is made.
    limited.delete(first.json()["session_id"], a)
    deadline = time.monotonic() + 30
    while first.json()["session_id"] in _containers(limited):
        assert time.monotonic() < deadline, _containers(limited)
        time.sleep(0.2)
    with limited.client(c) as client:
        assert client.get("/api/agents/sessions").json()["total"] == 0
    assert set(_containers(limited)) == {second.json()["session_id"]}
    limited.delete(second.json()["session_id"], b)


def test_a_dd_past_the_storage_limit_fails_inside_the_session(limited: Stack) -> None:
    key = f"sk-ant-dd-{uuid.uuid4().hex[:8]}"
    r = _launch(limited, key, config=SMALL)
    assert r.status_code == 200, r.text
    sid = r.json()["session_id"]
    try:
        name = f"agc-{sid}"
        proc = subprocess.run(
            [
                "docker", "exec", "--user", "1000:1000", name, "sh", "-c",
                "dd if=/dev/zero of=/workspace/fill bs=1M count=1024; echo rc=$?",
            ],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        out = proc.stdout + proc.stderr
        assert "No space left on device" in out and "rc=0" not in out, out
        # The host holds no more than the limit for this workspace.
        mounts = docker.from_env().api.inspect_container(name)["Mounts"]
        source = Path(next(m["Source"] for m in mounts if m["Destination"] == "/workspace"))
        assert source.with_suffix(".img").stat().st_blocks * 512 <= 256 * MiB
        # The files feature reads the capped workspace.
        with limited.client(key) as c:
            tree = c.get(f"/api/files/{sid}").json()
        assert "fill" in str(tree)
    finally:
        limited.delete(sid, key)
    deadline = time.monotonic() + 30
    while source.exists():
        assert time.monotonic() < deadline, f"{source} still there"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def impatient(
    tmp_path_factory: pytest.TempPathFactory, shared_model_server: ModelServer
) -> Iterator[Stack]:
    """An API that gives launches 0.3 s (a cold one takes longer); its worker gives them 90 s."""
    with running_stack(
        tmp_path_factory.mktemp("impatient"),
        shared_model_server.base_url,
        workers=0,
        extra_env={"AGC_LAUNCH_TIMEOUT": "0.3"},
    ) as s:
        s.start_worker(AGC_LAUNCH_TIMEOUT="90")
        s.wait_workers(1)
        yield s


def _launches_handled(s: Stack) -> bool:
    """The worker has taken and finished every queued launch (nothing pending or unacked)."""

    assert s.nats is not None

    async def read() -> bool:
        assert s.nats is not None
        nc = await nats.connect(s.nats.extra["url:api"], connect_timeout=2)
        try:
            js = nc.jetstream()
            info = await js.consumer_info(subjects.CMD_STREAM, subjects.LAUNCH_CONSUMER)
        finally:
            await nc.close()
        return bool(info.num_pending == 0 and info.num_ack_pending == 0)

    return asyncio.run(read())


def _events(s: Stack, sid: str, key: str) -> list[str]:
    with (
        s.client(key) as c,
        c.stream("GET", f"/api/agents/{sid}/events", headers={"Accept": "text/event-stream"}) as ev,
    ):
        return [f"{e.event}:{e.data.get('reason', '')}" for e in iter_sse(ev)]


def test_a_launch_answered_with_a_timeout_never_runs(impatient: Stack) -> None:
    key = f"sk-ant-late-{uuid.uuid4().hex[:8]}"
    r = _launch(impatient, key, config_id="code-assistant")
    assert r.status_code == 504 and "cancelled" in r.json()["detail"], r.text
    sid = r.json()["session_id"]
    # The worker either skips the launch (it saw the cancellation first) or had already taken
    # it: then, once its runner is up, it sees the cancellation and removes the sandbox.
    wait_until(partial(_launches_handled, impatient), 90, "the launch handled by the worker")
    wait_until(lambda: sid not in _containers(impatient), 90, "no container for the session")
    events = _events(impatient, sid, key)
    stopped = [e for e in events if e.startswith("session.stopped")]
    assert stopped in ([], ["session.stopped:cancelled"]), events
    assert not any(e.startswith(("turn.", "user.message")) for e in events), events
    with impatient.client(key) as c:
        assert c.get(f"/api/agents/sessions/{sid}").json()["status"] in ("failed", "stopped")
        chat = c.post(f"/api/agents/{sid}/chat", json={"message": "still there?"})
    assert chat.status_code == 409, chat.text
