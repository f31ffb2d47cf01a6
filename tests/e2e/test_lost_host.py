"""A lost host, end to end: the real stack, the real agent image, standard SSE clients.

A host vanishing is simulated honestly with what this machine has (one Docker engine): the
owning worker is SIGKILLed and its container and volumes are removed out of band, so no live
worker can see (or adopt) the session, exactly as if the host had gone with them. The other
worker then has to end the session within the bound its settings give, and every client must be
told: followers of /events, a streaming chat and a JSON chat that were waiting.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from httpx_sse import connect_sse

from tests.modelserver.server import ModelServer
from tests.support.stack import Stack, running_stack
from tests.support.wait import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

HEARTBEAT_TTL = 3.0  # tests/support/stack.py's AGC_HEARTBEAT_TTL
LOST_HOST_TIMEOUT = 3.0
# A pass runs every min(5, ttl, cleanup interval) seconds (workers/upkeep.py); the first pass
# after the owner's key expires starts the count, the first one after the timeout ends it.
PASS = min(5.0, HEARTBEAT_TTL)
BOUND = HEARTBEAT_TTL + LOST_HOST_TIMEOUT + 2 * PASS
# Timers on a loaded two-core machine slip; the bound is a design figure, not a real-time one.
SLACK = 5.0


def _follow(stack: Stack, sid: str, key: str, out: list[tuple[str, dict[str, Any]]]) -> None:
    """An /events follower on httpx-sse, until the stream ends."""
    with (
        httpx.Client(
            base_url=stack.base_url, timeout=120, headers={"Authorization": f"Bearer {key}"}
        ) as c,
        connect_sse(c, "GET", f"/api/agents/{sid}/events") as source,
    ):
        for ev in source.iter_sse():
            out.append((ev.event, ev.json()))


def test_a_lost_hosts_session_fails_within_the_bound_and_every_client_is_told(
    tmp_path: Path, model_server: ModelServer
) -> None:
    env = {"AGC_LOST_HOST_TIMEOUT": str(LOST_HOST_TIMEOUT), "SESSION_CLEANUP_INTERVAL": "60"}
    with running_stack(tmp_path, model_server.base_url, workers=0, extra_env=env) as s:
        far = s.start_worker(f"tw-far-{uuid.uuid4().hex[:6]}")
        s.wait_workers(1)
        key = f"sk-test-{uuid.uuid4().hex}"
        sid = s.launch(key)  # the only worker: "far" owns it
        near = s.start_worker(f"tw-near-{uuid.uuid4().hex[:6]}")
        s.wait_workers(2)

        followed: list[list[tuple[str, dict[str, Any]]]] = [[], []]
        followers = [
            threading.Thread(target=_follow, args=(s, sid, key, out), daemon=True)
            for out in followed
        ]
        for t in followers:
            t.start()
        wait_until(lambda: all(out for out in followed), 60, "the followers' first events")

        # The host goes: its worker dies at once and its container with it.
        s.stop_worker(far, kill=True)
        lost_at = time.monotonic()
        dc = docker.from_env()
        dc.containers.get(f"agc-{sid}").remove(force=True, v=True)
        for vol in (f"agc-ws-{sid}", f"agc-home-{sid}"):
            with contextlib.suppress(docker.errors.NotFound):
                dc.volumes.get(vol).remove(force=True)

        # Chats sent to the lost session wait for it, then get the error.
        results: dict[str, Any] = {}

        def chat_json() -> None:
            with s.client(key) as c:
                results["json"] = c.post(f"/api/agents/{sid}/chat", json={"message": "hello?"})

        def chat_sse() -> None:
            with (
                s.client(key) as c,
                connect_sse(
                    c, "POST", f"/api/agents/{sid}/chat", json={"message": "anyone?"}
                ) as source,
            ):
                results["sse"] = [(e.event, e.json()) for e in source.iter_sse()]

        chats = [threading.Thread(target=f, daemon=True) for f in (chat_json, chat_sse)]
        for t in chats:
            t.start()

        with s.client(key) as c:
            wait_until(
                lambda: c.get(f"/api/agents/sessions/{sid}").json()["status"] == "failed",
                BOUND + SLACK + 30,
                "the lost session to fail",
            )
            took = time.monotonic() - lost_at
            record = c.get(f"/api/agents/sessions/{sid}").json()
        print(f"lost host: session failed {took:.1f} s after the kill (bound {BOUND:.0f} s)")
        assert took <= BOUND + SLACK, f"failed after {took:.1f} s, bound {BOUND:.0f} s"
        assert far in record["error"] and "lost" in record["error"]

        for t in (*followers, *chats):
            t.join(60)
            assert not t.is_alive(), "a client was never told"
        for out in followed:
            kinds = [k for k, _ in out]
            assert kinds[-2:] == ["error", "session.stopped"], kinds[-5:]
            assert out[-2][1]["code"] == "host_lost" and out[-2][1]["fatal"] is True
        reply = results["json"].json()
        assert reply["is_error"] and {e["code"] for e in reply["errors"]} == {"host_lost"}
        streamed = results["sse"]
        assert [k for k, _ in streamed][-1] == "session.stopped"
        assert any(k == "error" and d["code"] == "host_lost" for k, d in streamed)
        # The session is over for good: no chat is accepted any more.
        with s.client(key) as c:
            assert c.post(f"/api/agents/{sid}/chat", json={"message": "x"}).status_code == 409
        assert near in s.workers  # the survivor is fine
