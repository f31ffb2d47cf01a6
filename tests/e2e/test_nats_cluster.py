"""A three-node JetStream cluster under ``agcluster up --nats-cluster 3``: a node dies, nothing is lost.

The soak: two sessions stream turns while, round after round, one NATS node is SIGKILLed
mid-turn (first the leader of the event stream, then the leader of the command stream, then
a node leading neither) and the supervisor restarts it. Every turn completes;
clients following with ``Last-Event-ID`` see every event exactly once; JetStream itself holds
no event twice (message ids are unique per session) and the restarted node catches up.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import nats
import pytest

from agcluster.credentials import ensure_credentials
from broker.retry import is_permanent
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
def cluster(
    tmp_path_factory: pytest.TempPathFactory, shared_model_server: ModelServer
) -> Iterator[Up]:
    require_docker()
    stack = Up.make(
        tmp_path_factory.mktemp("natscluster"),
        "--nats-cluster",
        "3",
        model_url=shared_model_server.base_url,
    )
    try:
        yield stack.start(timeout=120)
    finally:
        stack.close()


def js_call(up: Up, fn: Any) -> Any:
    """Run ``fn(js)`` against the cluster with a client of its own.

    Retried as any client of a cluster must: while a restarted node rejoins, the JetStream API
    can time out or find no leader for a few seconds.
    """

    async def run() -> Any:
        # The platform's NATS has users: log in as the API does (agcluster/credentials.py).
        creds = ensure_credentials(up.state / "credentials")
        urls = creds.nats_url(up.status()["nats_url"], "api")
        nc = await nats.connect(urls.split(","), connect_timeout=2)
        try:
            return await fn(nc.jetstream())
        finally:
            await nc.close()

    deadline = time.monotonic() + 30
    while True:
        try:
            return asyncio.run(run())
        except (nats.errors.Error, TimeoutError) as exc:
            if is_permanent(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stream_cluster(up: Up, stream: str) -> dict[str, Any]:
    async def info(js: Any) -> dict[str, Any]:
        si = await js.stream_info(stream)
        return {
            "replicas": si.config.num_replicas,
            "leader": si.cluster.leader,
            "peers": {r.name: bool(r.current) for r in si.cluster.replicas or []},
        }

    result: dict[str, Any] = js_call(up, info)
    return result


def msg_ids(up: Up, sid: str) -> list[str]:
    """Every stored event of ``sid`` by its ``Nats-Msg-Id`` (a duplicate would repeat one)."""

    async def read(js: Any) -> list[str]:
        sub = await js.subscribe(f"agc.evt.{sid}", stream="AGC_EVT", ordered_consumer=True)
        ids: list[str] = []
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=2)
                except nats.errors.TimeoutError:
                    return ids
                if msg_id := (msg.headers or {}).get("Nats-Msg-Id"):
                    ids.append(msg_id)
        finally:
            await sub.unsubscribe()

    result: list[str] = js_call(up, read)
    return result


def test_cluster_streams_are_replicated_three_times(cluster: Up) -> None:
    assert [p["name"] for p in cluster.status()["processes"][:3]] == ["nats-1", "nats-2", "nats-3"]
    for stream in ("AGC_CMD", "AGC_EVT", "OBJ_AGC_FILES"):
        assert stream_cluster(cluster, stream)["replicas"] == 3
        # A leader and two current followers, once the followers have reported in.
        info = wait_until(partial(_replicated, cluster, stream), 30, f"{stream} on three nodes")
        assert info["leader"] not in info["peers"]


def test_soak_a_node_killed_mid_turn_loses_and_duplicates_nothing(
    cluster: Up, shared_model_server: ModelServer
) -> None:
    keys: dict[str, str] = {}
    for _ in range(2):
        key = f"sk-test-{uuid.uuid4().hex}"
        keys[launch(cluster, key)] = key
    victims: list[Callable[[], str]] = [
        lambda: str(stream_cluster(cluster, "AGC_EVT")["leader"]),
        lambda: str(stream_cluster(cluster, "AGC_CMD")["leader"]),
        lambda: _follower_of_both(cluster),
    ]
    turns: dict[str, int] = dict.fromkeys(keys, 0)
    for rnd, pick in enumerate(victims):
        followers: dict[str, Follower] = {}
        chats: list[ChatStream] = []
        for sid, key in keys.items():
            marker = shared_model_server.add_script(
                f"nc-{rnd}-{sid}", [step(text(WORDS, chunk=4), delay=0.12)]
            )
            after = last_event_id(cluster, sid, key) or None
            followers[sid] = Follower(cluster, sid, key, after=after)
            chats.append(ChatStream(cluster, sid, key, f"round {rnd} {marker}"))
        following = list(followers.values())
        wait_until(
            partial(all_streaming, following, chats),
            60,
            "deltas on every session",
        )
        victim = pick()
        pid = cluster.kill(victim)
        wait_until(partial(cluster.restarted, victim, pid), 10, f"{victim} restarted")
        for sid, f in followers.items():
            assert f.done.wait(90), (rnd, victim, [e.event for e in f.events])
            turns[sid] += 1
            turn_id = f.events[-1].data["turn_id"]
            mine = [e for e in f.events if e.data.get("turn_id") == turn_id]
            ids = [e.id or 0 for e in mine]
            assert ids == sorted(set(ids)), (rnd, victim, ids)
            stored = replay_turn(cluster, sid, keys[sid], turn_id)
            assert [(e.id, e.event) for e in mine] == [(e.id, e.event) for e in stored]
            streamed = streamed_text(mine)
            assert streamed == WORDS, (rnd, victim, streamed)
            assert [e.event for e in mine].count("turn.completed") == 1
        # The restarted node rejoins and catches up with the stream's leader.
        wait_until(
            lambda: all(stream_cluster(cluster, "AGC_EVT")["peers"].values()),
            30,
            "every replica current again",
        )
        for chat in chats:
            chat.finished.wait(30)
    for sid in keys:
        stored_ids = msg_ids(cluster, sid)
        assert stored_ids and len(stored_ids) == len(set(stored_ids)), f"duplicates in {sid}"
    restarts = sum(
        cluster.metric("agc_supervisor_restarts_total", f"nats-{i}") or 0 for i in (1, 2, 3)
    )
    assert restarts == len(victims)
    assert cluster.health() == 200
    assert all(n == len(victims) for n in turns.values())


def _follower_of_both(up: Up) -> str:
    """A node that leads neither stream: killing it costs the streams a replica, not a leader."""
    leaders = {stream_cluster(up, s)["leader"] for s in ("AGC_EVT", "AGC_CMD")}
    return next(n for n in ("nats-1", "nats-2", "nats-3") if n not in leaders)


def all_streaming(followers: list[Follower], chats: list[ChatStream]) -> bool:
    # A chat refused outright (e.g. a 5xx while a node restarts) would never stream: say so now.
    failed = [c.error for c in chats if c.finished.is_set() and c.error is not None]
    assert not failed, f"a chat request failed: {failed}"
    return all(sum(e.event == "text.delta" for e in f.events) >= 3 for f in followers)


def _all_current(up: Up, stream: str) -> bool:
    return all(stream_cluster(up, stream)["peers"].values())


def _replicated(up: Up, stream: str) -> dict[str, Any] | None:
    info = stream_cluster(up, stream)
    return info if len(info["peers"]) == 2 and all(info["peers"].values()) else None


def test_a_chat_sent_while_the_cluster_has_no_quorum_goes_through(
    cluster: Up, shared_model_server: ModelServer
) -> None:
    """The API rides a chat through a failover (retrying NATS) instead of answering 5xx.

    Two of three nodes die: until the supervisor has restarted one and the streams have a
    leader again, no stream can take a command. The chat is sent inside that window.
    """
    key = f"sk-test-{uuid.uuid4().hex}"
    sid = launch(cluster, key)
    marker = shared_model_server.add_script("nc-quorum", [step(text("through the failover"))])
    leader = str(stream_cluster(cluster, "AGC_CMD")["leader"])
    other = next(n for n in ("nats-1", "nats-2", "nats-3") if n != leader)
    pids = {name: cluster.kill(name) for name in (leader, other)}
    with cluster.client(key) as c:
        r = c.post(f"/api/agents/{sid}/chat", json={"message": f"now {marker}"})
    assert r.status_code == 200, r.text
    assert r.json()["text"] == "through the failover"
    for name, pid in pids.items():
        wait_until(partial(cluster.restarted, name, pid), 10, f"{name} restarted")
    for stream in ("AGC_CMD", "AGC_EVT"):
        wait_until(partial(_all_current, cluster, stream), 30, f"every {stream} replica current")
