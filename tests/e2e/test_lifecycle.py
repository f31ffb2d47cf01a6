"""Sessions that survive: lifecycle, many workers, restarts and injected faults.

Each fault test runs its own stack, so killing a process never disturbs another test.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import docker
import httpx
import nats
import pytest
from nats.js.errors import NotFoundError

from broker import subjects
from tests.modelserver.script import step, text, tool_use
from tests.modelserver.server import ModelServer
from tests.support.auth import start_redis_with_acl
from tests.support.sse import Sse, event_ids, iter_sse
from tests.support.stack import IMAGE, Stack, running_stack
from tests.support.turns import streamed_text
from tests.support.wait import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def key() -> str:
    return f"sk-test-{uuid.uuid4().hex}"


def command_stored(stack: Stack, subject: str) -> bool:
    """Whether JetStream holds a command on ``subject`` (accepted, not yet consumed)."""

    async def check() -> bool:
        nc = await nats.connect(stack.nats.url)  # type: ignore[union-attr]
        try:
            await nc.jetstream().get_last_msg(subjects.CMD_STREAM, subject)
            return True
        except NotFoundError:
            return False
        finally:
            await nc.close()

    return asyncio.run(check())


def session_info(stack: Stack, sid: str, api_key: str) -> dict[str, Any]:
    with stack.client(api_key, timeout=10) as c:
        r = c.get(f"/api/agents/sessions/{sid}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def container_exists(sid: str) -> bool:
    try:
        docker.from_env().containers.get(f"agc-{sid}")
    except docker.errors.NotFound:
        return False
    return True


class EventReader:
    """Follows /events in a thread, reconnecting with Last-Event-ID whenever it breaks."""

    def __init__(self, stack: Stack, sid: str, api_key: str, until: str = "turn.completed"):
        self.stack, self.sid, self.api_key, self.until = stack, sid, api_key, until
        self.events: list[Sse] = []
        self.reconnects = 0
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, after: int | None = None) -> EventReader:
        self._after = after
        self._thread.start()
        return self

    def _run(self) -> None:
        last = self._after
        while not self.done.is_set():
            headers = {"Last-Event-ID": str(last)} if last else {}
            try:
                with (
                    self.stack.client(self.api_key, timeout=30) as c,
                    c.stream("GET", f"/api/agents/{self.sid}/events", headers=headers) as r,
                ):
                    if r.status_code != 200:
                        raise httpx.HTTPError(f"status {r.status_code}")
                    for ev in iter_sse(r):
                        self.events.append(ev)
                        last = ev.id
                        if ev.event == self.until:
                            self.done.set()
                            return
            except (httpx.HTTPError, OSError, ValueError):
                pass  # cut mid-event or refused while the API restarts: reconnect
            self.reconnects += 1
            time.sleep(0.3)

    def wait(self, timeout: float) -> list[Sse]:
        assert self.done.wait(timeout), [e.event for e in self.events]
        return self.events


def fire_chat(stack: Stack, sid: str, api_key: str, message: str) -> None:
    """Send a chat from a thread without waiting for it (the API may die under it)."""

    def run() -> None:
        try:
            with stack.client(api_key, timeout=120) as c:
                c.post(f"/api/agents/{sid}/chat", json={"message": message})
        except httpx.HTTPError:
            pass

    threading.Thread(target=run, daemon=True).start()


def slow_text_script(model: ModelServer, name: str, chunks: int = 30, delay: float = 0.1) -> str:
    words = " ".join(f"w{i:02d}" for i in range(chunks))
    return model.add_script(name, [step(text(words, chunk=4), delay=delay)])


def _kept_first_block(messages: list[dict[str, Any]]) -> bool:
    """A model request carrying the complete block of the cut response as the assistant's."""
    said = [m for m in messages if m.get("role") == "assistant"]
    return bool(said) and [c.get("text") for c in said[-1]["content"]] == ["First block."]


def _cut_after_a_complete_block(reader: EventReader) -> bool:
    kinds = [e.event for e in reader.events]
    return "message" in kinds and kinds[kinds.index("message") :].count("text.delta") >= 3


def assert_exactly_once(events: list[Sse]) -> None:
    ids = event_ids(events)
    assert ids == sorted(ids) and len(ids) == len(set(ids)), ids


# -- history ---------------------------------------------------------------------------


def test_history_is_rebuilt_from_the_stream_and_exports_markdown(stack: Stack) -> None:
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    api_key = key()
    sid = stack.launch(api_key)
    try:
        marker = model.add_script(
            f"hist-{sid}", [[tool_use("Bash", {"command": "echo hist-ok"})], [text("Listed.")]]
        )
        stack.chat_sse(sid, api_key, "first question")
        stack.chat_sse(sid, api_key, f"run it {marker}")
        with stack.client(api_key) as c:
            hist = c.get(f"/api/agents/{sid}/history").json()
            md = c.get(f"/api/agents/{sid}/history", params={"format": "markdown"})
            assert c.get(f"/api/agents/{sid}/history", params={"format": "xml"}).status_code == 400
    finally:
        stack.delete(sid, api_key)
    assert hist["total_turns"] == 2
    first, second = hist["turns"]
    assert first["user"] == "first question" and first["assistant"] == ["Echo: first question"]
    assert second["user"].startswith("run it")
    assert [(t["name"], t["output"].strip()) for t in second["tool_calls"]] == [("Bash", "hist-ok")]
    assert second["assistant"] == ["Listed."] and second["usage"]["output_tokens"] > 0
    assert hist["usage"]["output_tokens"] == sum(t["usage"]["output_tokens"] for t in hist["turns"])
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert "## Turn 2" in md.text and "**Tool `Bash`**" in md.text and "hist-ok" in md.text


# -- idle timeout ----------------------------------------------------------------------


def test_idle_sessions_stop_and_only_real_use_counts(
    tmp_path: Path, model_server: ModelServer
) -> None:
    env = {"SESSION_IDLE_TIMEOUT": "10", "SESSION_CLEANUP_INTERVAL": "1"}
    with running_stack(tmp_path, model_server.base_url, extra_env=env) as s:
        k = key()
        idle, used = s.launch(k), s.launch(k)
        t0 = time.monotonic()
        # Reading state and chatting: only the chat postpones the timeout.
        while time.monotonic() - t0 < 4:
            session_info(s, idle, k)
            time.sleep(0.5)
        with s.client(k) as c:
            assert c.post(f"/api/agents/{used}/chat", json={"message": "still here"}).is_success
        wait_until(lambda: session_info(s, idle, k)["status"] == "stopped", 15, "idle stop")
        assert session_info(s, used, k)["status"] in ("idle", "running")
        assert not container_exists(idle) and container_exists(used)
        names = {v.name for v in docker.from_env().volumes.list()}
        assert f"agc-ws-{idle}" not in names and f"agc-home-{idle}" not in names
        wait_until(lambda: session_info(s, used, k)["status"] == "stopped", 20, "second stop")


# -- many workers ----------------------------------------------------------------------


def test_three_workers_share_launches_and_commands_reach_owners(
    tmp_path: Path, model_server: ModelServer
) -> None:
    with running_stack(tmp_path, model_server.base_url, workers=3) as s:
        # Two callers: one key may hold only AGC_MAX_SESSIONS_PER_KEY (5) live sessions.
        keys = [key(), key()]
        launched = [(s.launch(keys[i % 2]), keys[i % 2]) for i in range(6)]
        owners = {sid: session_info(s, sid, k)["owner_worker"] for sid, k in launched}
        # Launches go to the least loaded worker (workers/placement.py): two each.
        per_worker = Counter(owners.values())
        assert set(per_worker) == set(s.workers), owners
        assert max(per_worker.values()) - min(per_worker.values()) <= 1, owners
        for sid, k in launched:
            with s.client(k) as c:
                r = c.post(f"/api/agents/{sid}/chat", json={"message": f"hi {sid[-4:]}"})
            assert r.json()["text"] == f"Echo: hi {sid[-4:]}"
        with s.client(keys[0]) as c:
            health = c.get("/health").json()
        assert health["workers"]["alive"] == 3 and health["workers"]["sessions"] == 6


# -- worker faults ---------------------------------------------------------------------


def test_worker_killed_mid_turn_its_sessions_are_adopted_with_nothing_lost(
    tmp_path: Path, model_server: ModelServer
) -> None:
    with running_stack(tmp_path, model_server.base_url, workers=2) as s:
        k = key()
        sid = s.launch(k)
        owner = session_info(s, sid, k)["owner_worker"]
        words = " ".join(f"w{i:02d}" for i in range(30))
        # Two text blocks: the first is complete before the cut, the second is cut mid-stream.
        # The CLI keeps the complete block, drops the partial one and asks the model to resume
        # (a new request whose last user message is its own note, so the server echoes it).
        marker = model_server.add_script(
            f"kill-{sid}", [step(text("First block."), text(words, chunk=4), delay=0.1)]
        )
        reader = EventReader(s, sid, k).start()
        fire_chat(s, sid, k, f"talk {marker}")
        wait_until(partial(_cut_after_a_complete_block, reader), 60, "a block, then deltas")
        s.stop_worker(owner, kill=True)
        events = reader.wait(60)
        assert_exactly_once(events)
        turn_id = events[-1].data["turn_id"]
        turn = [e for e in events if e.data.get("turn_id") == turn_id]
        # The dead worker's gateway cut the model stream and the CLI asked the model to resume:
        # a client drops the cut partial text at stream.retry and keeps the complete block,
        # exactly as the CLI's own conversation does.
        assert any(e.event == "stream.retry" for e in turn)
        assert any(_kept_first_block(r.messages) for r in model_server.requests), "no resume"
        answer = [e.data["text"] for e in turn if e.event == "message"][-1]
        assert answer.startswith("Echo: ") and "cut off" in answer
        assert streamed_text(turn) == "First block." + answer
        with s.client(k) as c:
            (done,) = [
                t
                for t in c.get(f"/api/agents/{sid}/history").json()["turns"]
                if t["turn_id"] == turn_id
            ]
        assert done["assistant"] == ["First block.", answer]
        new_owner = session_info(s, sid, k)["owner_worker"]
        assert new_owner != owner and new_owner in s.workers
        with s.client(k) as c:
            assert c.post(f"/api/agents/{sid}/chat", json={"message": "after"}).json()["text"] == (
                "Echo: after"
            )


def test_worker_restart_reattaches_and_queued_chat_runs(
    tmp_path: Path, model_server: ModelServer
) -> None:
    with running_stack(tmp_path, model_server.base_url, workers=0) as s:
        wid = s.start_worker("tw-stable")
        s.wait_workers(1)
        k = key()
        sid = s.launch(k)
        s.stop_worker(wid)  # graceful: SIGTERM drains, the container keeps running
        assert container_exists(sid)
        result: dict[str, Any] = {}

        def chat() -> None:
            with s.client(k) as c:
                result["r"] = c.post(f"/api/agents/{sid}/chat", json={"message": "while away"})

        t = threading.Thread(target=chat)
        t.start()
        wait_until(lambda: command_stored(s, subjects.session_cmd(sid, "chat")), 30, "the chat")
        assert "r" not in result  # nobody owns it right now: the command waits in JetStream
        s.start_worker("tw-stable")
        t.join(60)
        assert result["r"].json()["text"] == "Echo: while away"
        assert session_info(s, sid, k)["owner_worker"] == "tw-stable"


def test_runner_crash_comes_back_with_its_conversation(stack: Stack) -> None:
    model: ModelServer = stack.model  # type: ignore[attr-defined]
    k = key()
    sid = stack.launch(k)
    try:
        with stack.client(k) as c:
            assert c.post(f"/api/agents/{sid}/chat", json={"message": "remember 4242"}).is_success
        kill_runner(stack, sid, k)
        marker = model.add_script(f"resume-{sid}", [[text("It was 4242.")]])
        with stack.client(k) as c:
            r = c.post(f"/api/agents/{sid}/chat", json={"message": f"what was it? {marker}"})
        assert r.json()["text"] == "It was 4242."
        assert "remember 4242" in model.requests_for(f"resume-{sid}")[0].all_text
    finally:
        stack.delete(sid, k)


def kill_runner(stack: Stack, sid: str, api_key: str) -> None:
    """Kill the session's container (its runner dies with its tini); wait for the worker to
    restart it with its conversation (a ``session.ready`` with ``resumed``)."""
    reader = EventReader(stack, sid, api_key, until="session.ready")
    with stack.client(api_key) as c:
        after = max(e.id or 0 for e in iter_sse_once(c, sid))
    reader.start(after=after)
    docker.from_env().containers.get(f"agc-{sid}").kill()
    ready = reader.wait(90)[-1]
    assert ready.event == "session.ready" and ready.data["resumed"] is True


def iter_sse_once(c: httpx.Client, sid: str) -> Iterator[Sse]:
    """The events stored so far (stops at the first keep-alive gap)."""
    with c.stream("GET", f"/api/agents/{sid}/events", timeout=3) as r:
        try:
            yield from iter_sse(r)
        except httpx.ReadTimeout:
            return


# -- API, NATS and Redis restarts -----------------------------------------------------


def test_api_restart_mid_stream_clients_resume_exactly_once(
    tmp_path: Path, model_server: ModelServer
) -> None:
    with running_stack(tmp_path, model_server.base_url) as s:
        k = key()
        sid = s.launch(k)
        marker = slow_text_script(model_server, f"api-{sid}", chunks=30, delay=0.12)
        reader = EventReader(s, sid, k).start()
        fire_chat(s, sid, k, f"go {marker}")
        wait_until(lambda: sum(e.event == "text.delta" for e in reader.events) >= 3, 60, "deltas")
        s.stop_api(kill=True)
        s.start_api()
        events = reader.wait(60)
        assert reader.reconnects >= 1
        assert_exactly_once(events)
        turn_id = events[-1].data["turn_id"]
        streamed = "".join(
            e.data["text"]
            for e in events
            if e.event == "text.delta" and e.data["turn_id"] == turn_id
        )
        assert streamed == " ".join(f"w{i:02d}" for i in range(30))
        info = session_info(s, sid, k)  # session, ownership and key survived
        assert info["owner_worker"] in s.workers and info["turns"] == 1


def test_nats_restart_everything_reconnects_and_pending_launch_happens(
    tmp_path: Path, model_server: ModelServer
) -> None:
    with running_stack(tmp_path, model_server.base_url, workers=0) as s:
        wid = s.start_worker()
        s.wait_workers(1)
        k = key()
        sid = s.launch(k)
        s.restart_nats()
        wait_until(lambda: httpx.get(f"{s.base_url}/health").status_code == 200, 30, "health")
        with s.client(k) as c:
            assert c.post(f"/api/agents/{sid}/chat", json={"message": "back"}).json()["text"] == (
                "Echo: back"
            )
        # A launch accepted by JetStream while no worker runs survives a NATS restart.
        s.stop_worker(wid, kill=True)
        from redis import Redis

        assert s.redis is not None
        Redis.from_url(s.redis.url).set("agc:worker:tw-fake", b"{}", ex=60)  # API sees a worker
        Redis.from_url(s.redis.url).sadd("agc:workers", "tw-fake")
        out: dict[str, Any] = {}

        def launch() -> None:
            with s.client(timeout=180) as c:
                out["r"] = c.post(
                    "/api/agents/launch", json={"api_key": k, "config_id": "code-assistant"}
                )

        t = threading.Thread(target=launch)
        t.start()
        wait_until(lambda: command_stored(s, subjects.LAUNCH), 30, "the launch in JetStream")
        s.restart_nats()
        s.start_worker()
        t.join(120)
        assert out["r"].status_code == 200, out["r"].text
        new_sid = out["r"].json()["session_id"]
        with s.client(k) as c:
            assert c.post(f"/api/agents/{new_sid}/chat", json={"message": "x"}).is_success


def test_redis_restart_state_persists(tmp_path: Path, model_server: ModelServer) -> None:
    with running_stack(tmp_path, model_server.base_url) as s:
        k = key()
        sid = s.launch(k)
        with s.client(k) as c:
            assert c.post(f"/api/agents/{sid}/chat", json={"message": "one"}).is_success
        before = session_info(s, sid, k)
        assert s.redis is not None
        s.redis.stop()
        with s.client(k) as c:
            down = c.get(f"/api/agents/sessions/{sid}")
        assert down.status_code == 503 and down.json()["error"] == "unavailable"
        s.redis = start_redis_with_acl(s.tmp / "redis", s.credentials())
        wait_until(lambda: httpx.get(f"{s.base_url}/health").status_code == 200, 30, "health")
        after = session_info(s, sid, k)
        for field in ("session_id", "config_id", "owner_worker", "turns", "usage", "created_at"):
            assert after[field] == before[field], field
        with s.client(k) as c:
            assert c.post(f"/api/agents/{sid}/chat", json={"message": "two"}).json()["text"] == (
                "Echo: two"
            )
        assert session_info(s, sid, k)["turns"] == 2


# -- reconciliation and poison messages -------------------------------------------------


def test_orphans_are_removed_and_poison_commands_are_given_up(
    tmp_path: Path, model_server: ModelServer
) -> None:
    client = docker.from_env()
    ghost = f"conv-{uuid.uuid4().hex}"
    with running_stack(tmp_path, model_server.base_url) as s:
        stray = client.containers.create(
            IMAGE,
            command=["sleep", "600"],
            entrypoint=["/usr/bin/tini", "--"],
            labels={
                "agc.managed": "1",
                "agc.cluster": s.cluster,
                "agc.session": ghost,
                "agc.worker": "tw-gone",
            },
            name=f"agc-{ghost}",
            network_mode="none",
        )
        stray.start()
        s.worker_ids.add("tw-gone")  # cleaned up by the stack too, should the test fail
        wait_until(lambda: not container_exists(ghost), 20, "orphan removal")

        k = key()
        sid = s.launch(k)
        assert s.nats is not None

        async def poison() -> None:
            nc = await nats.connect(s.nats.url)  # type: ignore[union-attr]
            js = nc.jetstream()
            await js.publish(f"agc.cmd.session.{sid}.chat", b'{"type":"chat","oops":1}')
            await nc.close()

        asyncio.run(poison())

        def bad_command_seen() -> bool:
            with s.client(k) as c:
                hist = list(iter_sse_once(c, sid))
            return any(e.event == "error" and e.data["code"] == "bad_command" for e in hist)

        wait_until(bad_command_seen, 20, "bad_command error event")
        with s.client(k) as c:
            assert c.post(f"/api/agents/{sid}/chat", json={"message": "fine"}).json()["text"] == (
                "Echo: fine"
            )

        # It was terminated, not redelivered forever: the command stream holds nothing for it.
        async def pending() -> int:
            nc = await nats.connect(s.nats.url)  # type: ignore[union-attr]
            info = await nc.jetstream().consumer_info("AGC_CMD", f"sess-{sid}")
            await nc.close()
            return int(info.num_pending) + int(info.num_ack_pending)

        assert asyncio.run(pending()) == 0


def test_worker_exposes_prometheus_metrics(tmp_path: Path, model_server: ModelServer) -> None:
    from tests.support.stack import free_port

    port = free_port()
    with running_stack(
        tmp_path, model_server.base_url, extra_env={"AGC_METRICS_PORT": str(port)}
    ) as s:
        k = key()
        sid = s.launch(k)
        with s.client(k) as c:
            assert c.post(f"/api/agents/{sid}/chat", json={"message": "count me"}).is_success
        s.delete(sid, k)
        text = wait_until(
            lambda: (
                (t := httpx.get(f"http://127.0.0.1:{port}/metrics").text)
                and 'agc_worker_commands_total{verb="stop"} 1.0' in t
                and t
            ),
            10,
            "metrics",
        )
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("agc_") and " " in line
    }
    assert values['agc_worker_launches_total{outcome="ok"}'] == 1
    assert values["agc_worker_launch_seconds_count"] == 1
    assert values['agc_worker_commands_total{verb="chat"}'] == 1
    assert values["agc_worker_events_total"] >= 6  # ready, user.message, turn..., completed
