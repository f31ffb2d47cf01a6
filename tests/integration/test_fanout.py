"""The API's SSE fan-out against real NATS, Redis and HTTP (uvicorn), read by standard clients.

Sessions here have no container: their events are published to JetStream exactly as a worker
publishes them (tests/support/scripted_session.py), so what is tested is the API alone: one
consumer per session per process, every event to every client exactly once, exact resumption
with Last-Event-ID across the cache/stream seam, slow clients cut with an error event, limits
answered with 503 + Retry-After, and `text/event-stream` on every SSE response (httpx-sse
refuses anything else).
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from nats.aio.client import Client as NATS

from agcluster.procs import Service
from api.agents.hub import EventHub
from api.settings import ApiSettings
from broker import subjects
from broker.events import ErrorEvent, SessionStopped, TextDelta, TurnCompleted
from broker.streams import ensure_streams
from tests.support.api_server import ServedApi, api_settings, serve_api
from tests.support.scripted_session import (
    ScriptedSession,
    answer_chats,
    create_session,
    publish,
    stored_seqs,
    turn,
)
from tests.support.sse import Sse, aiter_sse

Settings = Callable[..., ApiSettings]


@pytest.fixture
def settings(
    nats_server: Service, redis_server: Service, tmp_path: Path, secret_key: str
) -> Settings:
    def make(**overrides: Any) -> ApiSettings:
        # Every viewer of a session holds its key: lift the per-key stream quota.
        values: dict[str, Any] = {"max_streams_per_key": 1000, **overrides}
        return api_settings(nats_server.url, redis_server.url, secret_key, tmp_path, **values)

    return make


@pytest.fixture
async def js(nc: NATS) -> Any:
    js = nc.jetstream()
    await ensure_streams(js)
    return js


async def _session(api: ServedApi, status: str = "running") -> ScriptedSession:
    s = api.settings
    return await create_session(s.redis_url, s.secret(), status=status)


def _hub(api: ServedApi) -> EventHub:
    hub: EventHub = api.app.state.services.hub
    return hub


async def _until(cond: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Wait for a condition of the in-process API (polled; the loop keeps serving meanwhile)."""
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)
    assert cond(), what


async def _follow(
    client: httpx.AsyncClient,
    sess: ScriptedSession,
    *,
    until: Callable[[Sse], bool],
    after: int | None = None,
    connected: asyncio.Event | None = None,
    parser: str = "httpx-sse",
) -> list[Sse]:
    """Read /events (with httpx-sse or the project's parser) until ``until`` holds."""
    headers = dict(sess.auth)
    if after is not None:
        headers["Last-Event-ID"] = str(after)
    url = f"/api/agents/{sess.session_id}/events"
    got: list[Sse] = []
    if parser == "httpx-sse":
        async with aconnect_sse(client, "GET", url, headers=headers) as source:
            assert source.response.status_code == 200, await source.response.aread()
            if connected is not None:
                connected.set()
            async for raw in source.aiter_sse():
                ev = Sse(int(raw.id) if raw.id else None, raw.event, raw.json(), raw.id)
                got.append(ev)
                if until(ev):
                    return got
    else:
        async with client.stream("GET", url, headers=headers) as r:
            assert r.status_code == 200, await r.aread()
            assert r.headers["content-type"].startswith("text/event-stream")
            if connected is not None:
                connected.set()
            async for ev in aiter_sse(r):
                got.append(ev)
                if until(ev):
                    return got
    return got


def _completes(turn_id: str) -> Callable[[Sse], bool]:
    return lambda ev: ev.event == "turn.completed" and ev.data.get("turn_id") == turn_id


def _upto(truth: list[int], last: Sse, after: int = 0) -> list[int]:
    """The stored sequences after ``after`` through the ``last`` event a client read."""
    assert last.event == "turn.completed", last
    return [s for s in truth if after < s <= (last.id or 0)]


async def test_clients_of_a_session_share_one_consumer_and_get_every_event_once(
    settings: Settings, js: Any
) -> None:
    n = 60
    async with serve_api(settings()) as api:
        sess = await _session(api)
        sid = sess.session_id
        await publish(js, turn(sid, "turn-1"))
        limits = httpx.Limits(max_connections=n + 5)
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30, limits=limits) as c:
            connected = [asyncio.Event() for _ in range(n)]
            readers = [
                asyncio.create_task(
                    _follow(
                        c,
                        sess,
                        until=_completes("turn-2"),
                        connected=connected[i],
                        parser="httpx-sse" if i % 2 else "project",
                    )
                )
                for i in range(n)
            ]
            async with asyncio.timeout(30):
                await asyncio.gather(*(e.wait() for e in connected))
            assert _hub(api).clients == n
            # One consumer follows the session for all of them (before: one per client).
            info = await js.stream_info(subjects.EVT_STREAM)
            assert info.state.consumer_count == 1
            await publish(js, turn(sid, "turn-2", deltas=30))
            results = await asyncio.gather(*readers)
        truth = await stored_seqs(js, sid)
        for got in results:
            # Every event up to turn-2's completion, once, in order.
            assert [e.id for e in got] == _upto(truth, got[-1])
        await _until(lambda: _hub(api).clients == 0, "clients released")


async def test_last_event_id_resumes_exactly_across_cache_and_stream(
    settings: Settings, js: Any
) -> None:
    # A cache of a few events only: most resumptions must read the stream, then the cache,
    # then the live queue, while the session keeps publishing.
    async with serve_api(settings(sse_cache_bytes=1500, sse_keepalive=1.0)) as api:
        sess = await _session(api)
        sid = sess.session_id
        history = await publish(js, turn(sid, "turn-1", deltas=40))
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as c:
            # A first client makes the API follow the session (its cache fills and evicts).
            warm = asyncio.Event()
            first = asyncio.create_task(
                _follow(c, sess, until=_completes("turn-3"), connected=warm)
            )
            await warm.wait()

            async def publish_live() -> None:
                for i in range(2, 4):
                    for ev in turn(sid, f"turn-{i}", deltas=25):
                        await publish(js, [ev])
                        await asyncio.sleep(0)

            live = asyncio.create_task(publish_live())
            points = [0, 1, history[5], history[len(history) // 2], history[-2], history[-1]]
            resumed = [
                asyncio.create_task(
                    _follow(
                        c,
                        sess,
                        after=p,
                        until=_completes("turn-3"),
                        parser="project" if i % 2 else "httpx-sse",
                    )
                )
                for i, p in enumerate(points)
            ]
            await live
            results = await asyncio.gather(first, *resumed)
        truth = await stored_seqs(js, sid)
        assert [e.id for e in results[0]] == _upto(truth, results[0][-1])
        for p, got in zip(points, results[1:], strict=True):
            assert [e.id for e in got] == _upto(truth, got[-1], p), f"after {p}"
        assert _hub(api).sessions == 1


async def test_a_slow_client_is_cut_with_an_error_event_and_never_holds_up_the_others(
    settings: Settings, js: Any
) -> None:
    async with serve_api(settings(sse_client_queue=20)) as api:
        sess = await _session(api)
        sid = sess.session_id
        host, port = api.base_url.removeprefix("http://").split(":")
        # A client that asks for the stream and then does not read it: a tiny receive
        # buffer, so the server's writes to it block almost at once.
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect((host, int(port)))
        raw.sendall(
            f"GET /api/agents/{sid}/events HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {sess.api_key}\r\n\r\n".encode()
        )
        await _until(lambda: _hub(api).clients == 1, "slow client connected")
        async with httpx.AsyncClient(base_url=api.base_url, timeout=60) as c:
            connected = [asyncio.Event() for _ in range(3)]
            fast = [
                asyncio.create_task(
                    _follow(c, sess, until=_completes("turn-big"), connected=connected[i])
                )
                for i in range(3)
            ]
            for e in connected:
                await e.wait()
            # ~6 MiB in 200 events: far more than the slow client's socket can hold.
            await publish(js, turn(sid, "turn-big", deltas=200, delta_bytes=32_000))
            results = await asyncio.gather(*fast)
        truth = await stored_seqs(js, sid)
        for got in results:
            assert [e.id for e in got] == _upto(truth, got[-1])
        # The slow client was let go: the hub no longer queues anything for it.
        topic = next(iter(_hub(api)._topics.values()))
        assert len(topic.subs) == 0
        # When it finally reads: a prefix of the events, then an error event, then the end.
        raw.setblocking(False)
        loop = asyncio.get_running_loop()
        body = b""
        async with asyncio.timeout(30):
            while chunk := await loop.sock_recv(raw, 1 << 20):
                body += chunk
                if body.endswith(b"0\r\n\r\n"):
                    break  # the chunked body's terminator: the server ended the stream
        raw.close()
        text = body.decode(errors="replace")
        assert "event: error" in text and '"code":"slow_consumer"' in text
        tail = text[text.rindex("event: error") :]
        assert "event: text.delta" not in tail  # nothing after the error event
        await _until(lambda: _hub(api).clients == 0, "slow client released")


async def test_a_reached_limit_answers_503_with_retry_after(settings: Settings, js: Any) -> None:
    async with serve_api(settings(sse_max_clients=2, sse_max_sessions=1, retry_after=2)) as api:
        sess = await _session(api)
        other = await _session(api)
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as c:
            url = f"/api/agents/{sess.session_id}/events"
            async with c.stream("GET", url, headers=sess.auth) as a:
                assert a.status_code == 200
                # The second session would be a second followed session: no room.
                r = await c.get(f"/api/agents/{other.session_id}/events", headers=other.auth)
                assert r.status_code == 503, r.text
                assert r.headers["retry-after"] == "2"
                assert r.json()["error"] == "unavailable" and "SSE_MAX_SESSIONS" in r.text
                async with c.stream("GET", url, headers=sess.auth) as b:
                    assert b.status_code == 200
                    r = await c.get(url, headers=sess.auth)
                    assert r.status_code == 503 and r.headers["retry-after"] == "2"
                    assert "SSE_MAX_CLIENTS" in r.json()["detail"]
            await _until(lambda: _hub(api).clients == 0, "streams released")
            async with c.stream("GET", url, headers=sess.auth) as again:
                assert again.status_code == 200
            # A session nobody watches any more makes room for another at once.
            await _until(lambda: _hub(api).clients == 0, "stream released")
            other_url = f"/api/agents/{other.session_id}/events"
            async with c.stream("GET", other_url, headers=other.auth) as r:
                assert r.status_code == 200 and _hub(api).sessions == 1


async def test_chat_sse_is_text_event_stream_for_standard_clients(
    settings: Settings, js: Any
) -> None:
    async with serve_api(settings()) as api:
        sess = await _session(api)
        sid = sess.session_id
        async with (
            answer_chats(js, sid, deltas=4) as chats,
            httpx.AsyncClient(base_url=api.base_url, timeout=30) as c,
        ):
            async with aconnect_sse(
                c, "POST", f"/api/agents/{sid}/chat", json={"message": "hi"}, headers=sess.auth
            ) as source:
                assert source.response.headers["content-type"].startswith("text/event-stream")
                turn_id = source.response.headers["x-turn-id"]
                events = [(e.event, e.json()) async for e in source.aiter_sse()]
            assert [t for t, _ in events][-1] == "turn.completed"
            assert {d["turn_id"] for t, d in events if "turn_id" in d} == {turn_id}
            assert [t for t, _ in events].count("text.delta") == 4
            # The same key again is the same turn: replayed from the API's cache, not re-run.
            key = {"Idempotency-Key": "k-1", **sess.auth}
            first = (
                await c.post(f"/api/agents/{sid}/chat", json={"message": "a"}, headers=key)
            ).json()
            again = await c.post(f"/api/agents/{sid}/chat", json={"message": "a"}, headers=key)
            assert again.status_code == 200 and again.json()["turn_id"] == first["turn_id"]
            assert again.json()["text"] == first["text"] == "a" * 4
            assert len(chats) == 2


async def test_a_session_that_fails_ends_every_stream_and_pending_chat_with_the_error(
    settings: Settings, js: Any
) -> None:
    async with serve_api(settings()) as api:
        sess = await _session(api)
        sid = sess.session_id
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as c:
            connected = [asyncio.Event() for _ in range(5)]
            followers = [
                asyncio.create_task(_follow(c, sess, until=lambda e: False, connected=connected[i]))
                for i in range(5)
            ]
            # Chats nobody answers (the owner's host is gone): one streaming, one JSON.
            sse_chat = asyncio.create_task(_chat_sse(c, sess, "still there?"))
            json_chat = asyncio.create_task(
                c.post(f"/api/agents/{sid}/chat", json={"message": "hello?"}, headers=sess.auth)
            )
            for e in connected:
                await e.wait()
            await _until(lambda: _hub(api).clients == 7, "chats subscribed")
            await publish(
                js,
                [
                    ErrorEvent(
                        session_id=sid,
                        code="host_lost",
                        message="the session's host is gone",
                        fatal=True,
                    ),
                    SessionStopped(session_id=sid, reason="failed"),
                ],
            )
            for got in await asyncio.gather(*followers):
                assert [e.event for e in got][-2:] == ["error", "session.stopped"]
                assert got[-2].data["code"] == "host_lost"
            chat_events = await sse_chat
            assert [e.event for e in chat_events] == ["error", "session.stopped"]
            reply = (await json_chat).json()
            assert reply["is_error"] and reply["errors"][0]["code"] == "host_lost"
        await _until(lambda: _hub(api).clients == 0, "all streams ended")


async def _chat_sse(c: httpx.AsyncClient, sess: ScriptedSession, message: str) -> list[Sse]:
    async with c.stream(
        "POST",
        f"/api/agents/{sess.session_id}/chat",
        json={"message": message},
        headers={"Accept": "text/event-stream", **sess.auth},
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        return [e async for e in aiter_sse(r)]


async def test_an_ended_session_replays_its_history_and_ends(settings: Settings, js: Any) -> None:
    async with serve_api(settings()) as api:
        sess = await _session(api, status="stopped")
        sid = sess.session_id
        seqs = await publish(
            js,
            [
                TextDelta(session_id=sid, turn_id="t", text="a"),
                TurnCompleted(session_id=sid, turn_id="t"),
            ],
        )
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as c:
            got = await _follow(c, sess, until=lambda e: False)
            assert [e.id for e in got] == seqs
            again = await _follow(c, sess, after=seqs[-1], until=lambda e: False)
            assert again == []


async def test_unknown_and_foreign_sessions_are_refused_before_any_stream(
    settings: Settings, js: Any
) -> None:
    async with serve_api(settings()) as api:
        sess = await _session(api)
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as c:
            missing = f"conv-{uuid.uuid4().hex}"
            r = await c.get(f"/api/agents/{missing}/events", headers=sess.auth)
            assert r.status_code == 404
            r = await c.get(
                f"/api/agents/{sess.session_id}/events",
                headers={"Authorization": "Bearer not-the-key", "Last-Event-ID": "1"},
            )
            assert r.status_code == 403
            r = await c.get(
                f"/api/agents/{sess.session_id}/events",
                headers={**sess.auth, "Last-Event-ID": "x1"},
            )
            assert r.status_code == 400
        assert _hub(api).clients == 0 and _hub(api).sessions == 0
