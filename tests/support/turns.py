"""Client-side helpers for turns on a running stack: follow, chat, replay (``tests/support/up.py``).

What a client does, with the clients users have (httpx-sse, which also insists on
``text/event-stream``): follow ``/events`` resuming with ``Last-Event-ID``, chat as SSE, and
read a turn back as JetStream stored it (with the project's own parser).
"""

from __future__ import annotations

import threading
import time

import httpx
from httpx_sse import ServerSentEvent, SSEError, connect_sse

from tests.support.sse import Sse, iter_sse
from tests.support.up import Up

# A turn that streams for about four seconds (30 deltas 0.12 s apart) with the script below.
WORDS = " ".join(f"w{i:02d}" for i in range(30))


def _event(raw: ServerSentEvent) -> Sse:
    return Sse(int(raw.id) if raw.id else None, raw.event, raw.json(), raw.id)


class Follower:
    """Follows ``/events`` in a thread from ``after``, resuming with ``Last-Event-ID``."""

    def __init__(self, up: Up, sid: str, key: str, after: int | None) -> None:
        self.up, self.sid, self.key, self.last = up, sid, key, after
        self.events: list[Sse] = []
        self.reconnects = 0
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self.done.is_set():
            headers = {"Last-Event-ID": str(self.last)} if self.last else {}
            try:
                with (
                    httpx.Client(base_url=self.up.base_url, timeout=30) as c,
                    connect_sse(
                        c,
                        "GET",
                        f"/api/agents/{self.sid}/events",
                        headers={"Authorization": f"Bearer {self.key}", **headers},
                    ) as source,
                ):
                    if source.response.status_code == 200:
                        for raw in source.iter_sse():
                            ev = _event(raw)
                            self.events.append(ev)
                            self.last = ev.id
                            if ev.event == "turn.completed":
                                self.done.set()
                                return
            except (httpx.HTTPError, OSError, ValueError, KeyError, SSEError):
                pass  # cut mid-event, or refused while the API restarts: resume
            self.reconnects += 1
            time.sleep(0.2)


class ChatStream:
    """``POST /chat`` as SSE in a thread: what the chatting client itself sees."""

    def __init__(self, up: Up, sid: str, key: str, message: str) -> None:
        self.events: list[Sse] = []
        self.error: BaseException | None = None
        self.finished = threading.Event()
        args = (up.base_url, sid, key, message)
        threading.Thread(target=self._run, args=args, daemon=True).start()

    def _run(self, base: str, sid: str, key: str, message: str) -> None:
        try:
            with (
                httpx.Client(base_url=base, timeout=120) as c,
                connect_sse(
                    c,
                    "POST",
                    f"/api/agents/{sid}/chat",
                    json={"message": message},
                    headers={"Authorization": f"Bearer {key}"},
                ) as source,
            ):
                for raw in source.iter_sse():
                    self.events.append(_event(raw))
        except (httpx.HTTPError, OSError, ValueError, SSEError) as exc:
            self.error = exc
        finally:
            self.finished.set()


def launch(up: Up, key: str) -> str:
    with up.client() as c:
        r = c.post("/api/agents/launch", json={"api_key": key, "config_id": "code-assistant"})
    assert r.status_code == 200, f"{r.status_code} {r.text}\n{up.logs()}"
    return str(r.json()["session_id"])


def last_event_id(up: Up, sid: str, key: str) -> int:
    """The id of the session's newest stored event (reads until the stream goes quiet)."""
    last = 0
    with (
        up.client(key, timeout=2) as c,
        c.stream("GET", f"/api/agents/{sid}/events") as r,
    ):
        try:
            for ev in iter_sse(r):
                last = ev.id or last
        except httpx.ReadTimeout:
            pass
    return last


def replay_turn(up: Up, sid: str, key: str, turn_id: str) -> list[Sse]:
    """The turn's events as JetStream stored them, read again from the start."""
    out: list[Sse] = []
    with up.client(key, timeout=30) as c, c.stream("GET", f"/api/agents/{sid}/events") as r:
        assert r.status_code == 200, (r.status_code, r.read())
        for ev in iter_sse(r):
            if ev.data.get("turn_id") == turn_id:
                out.append(ev)
                if ev.event == "turn.completed":
                    break
    return out


def streamed_text(events: list[Sse]) -> str:
    """The assistant text a client shows from the deltas, as a consumer must read them.

    ``stream.retry`` says the model request streaming until then was cut and is being sent
    again (e.g. its gateway died with a worker): the partial text since the last complete
    block is dropped, because the retry streams it anew.
    """
    done, partial = "", ""
    for e in events:
        if e.data.get("parent_tool_use_id"):
            continue
        if e.event == "text.delta":
            partial += e.data["text"]
        elif e.event == "stream.retry":
            partial = ""
        elif e.event == "message":
            done, partial = done + partial, ""
    return done + partial
