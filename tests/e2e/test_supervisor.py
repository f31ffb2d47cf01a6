"""``agcluster up`` keeps the stack up: a process SIGKILLed mid-turn comes back, nothing is lost.

Through the real command on free ports with its own state dir: a session streams a turn for
about four seconds, and the worker, then the API, then NATS is SIGKILLed in the middle of it.
The client following the session's events (reconnecting with ``Last-Event-ID`` when its stream
breaks) gets every event exactly once, the turn completes, the supervisor has restarted the
process and ``/health`` is 200 again within 5 s of the kill. Redis gets the same treatment.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.modelserver.script import step, text
from tests.modelserver.server import ModelServer
from tests.support.stack import require_docker
from tests.support.turns import (
    WORDS,
    ChatStream,
    Follower,
    last_event_id,
    launch,
    replay_turn,
    streamed_text,
)
from tests.support.up import Up, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory, shared_model_server: ModelServer) -> Iterator[Up]:
    """One supervised stack for the module; each test kills one of its processes."""
    require_docker()
    stack = Up.make(tmp_path_factory.mktemp("sup"), model_url=shared_model_server.base_url)
    try:
        yield stack.start()
    finally:
        stack.close()


def kill_mid_turn(up: Up, victim: str, model: ModelServer) -> tuple[Follower, ChatStream]:
    """Stream a ~4 s turn, SIGKILL ``victim`` after a few deltas; check it is back in 5 s."""
    key = f"sk-test-{uuid.uuid4().hex}"
    sid = launch(up, key)
    marker = model.add_script(f"sup-{victim}-{sid}", [step(text(WORDS, chunk=4), delay=0.12)])
    follower = Follower(up, sid, key, after=last_event_id(up, sid, key) or None)
    chat = ChatStream(up, sid, key, f"talk slowly {marker}")
    wait_until(
        lambda: sum(e.event == "text.delta" for e in follower.events) >= 3, 60, "first deltas"
    )
    pid = up.kill(victim)
    killed_at = time.monotonic()
    wait_until(
        lambda: up.restarted(victim, pid) and up.health() == 200,
        5.0,
        f"{victim} restarted and /health 200 within 5 s of the kill\n{up.logs()}",
    )
    recovered = time.monotonic() - killed_at
    print(f"{victim}: SIGKILL -> restarted and /health 200 in {recovered:.2f} s")
    assert recovered <= 5.0
    assert follower.done.wait(90), [e.event for e in follower.events]
    turn_id = follower.events[-1].data["turn_id"]
    mine = [e for e in follower.events if e.data.get("turn_id") == turn_id]
    # Exactly once: ids strictly increase, and the stream agrees event for event.
    ids = [e.id or 0 for e in mine]
    assert ids == sorted(set(ids)), ids
    stored = replay_turn(up, sid, key, turn_id)
    assert [(e.id, e.event) for e in mine] == [(e.id, e.event) for e in stored]
    streamed = streamed_text(mine)
    full = [e.data["text"] for e in mine if e.event == "message"]
    assert streamed == WORDS and full == [WORDS], (streamed, full, [e.event for e in mine])
    assert [e.event for e in mine].count("turn.completed") == 1
    assert mine[-1].data["is_error"] is False
    # Counted, logged, and the session still answers.
    assert up.metric("agc_supervisor_restarts_total", victim) == 1.0
    assert up.metric("agc_supervisor_up", victim) == 1.0
    assert f"{victim} exited unexpectedly (killed by SIGKILL" in up.output()
    with up.client(key) as c:
        r = c.post(f"/api/agents/{sid}/chat", json={"message": "after"})
    assert r.status_code == 200 and r.json()["text"] == "Echo: after", r.text
    chat.finished.wait(30)
    return follower, chat


def test_worker_killed_mid_turn_is_restarted_and_the_stream_never_breaks(
    up: Up, shared_model_server: ModelServer
) -> None:
    follower, chat = kill_mid_turn(up, "worker-1", shared_model_server)
    # The API never went away: the chatting client's own stream stayed connected throughout
    # and saw the whole turn, each event once.
    assert chat.error is None, chat.error
    turn_id = follower.events[-1].data["turn_id"]
    seen = [(e.id, e.event) for e in chat.events if e.data.get("turn_id") == turn_id]
    mine = [(e.id, e.event) for e in follower.events if e.data.get("turn_id") == turn_id]
    assert seen == mine


def test_api_killed_mid_turn_is_restarted_and_clients_resume_exactly_once(
    up: Up, shared_model_server: ModelServer
) -> None:
    follower, chat = kill_mid_turn(up, "api", shared_model_server)
    assert follower.reconnects >= 1  # its stream broke with the API and resumed by id
    assert chat.error is not None or not any(e.event == "turn.completed" for e in chat.events)


def test_nats_killed_mid_turn_is_restarted_and_nothing_is_lost(
    up: Up, shared_model_server: ModelServer
) -> None:
    kill_mid_turn(up, "nats", shared_model_server)


def test_redis_killed_mid_turn_is_restarted_and_the_turn_rides_through(
    up: Up, shared_model_server: ModelServer
) -> None:
    kill_mid_turn(up, "redis", shared_model_server)


def test_sigterm_stops_everything_in_order(up: Up) -> None:
    pids = {p["name"]: p["pid"] for p in up.status()["processes"]}
    assert up.stop() == 0
    out = up.output()
    order = [out.index(f"{name} stopped") for name in ("worker-1", "api", "redis", "nats")]
    assert order == sorted(order), out[-2000:]
    for name, pid in pids.items():
        assert not Path(f"/proc/{pid}").exists(), f"{name} (pid {pid}) still runs"
    assert not (up.state / "up.json").exists()
