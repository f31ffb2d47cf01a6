"""Soak benchmark: concurrent sessions chatting with tools while a worker and the API die.

    python -m tests.bench.soak [--sessions 10] [--chats 3] [--workers 2] [--deadline 270]
    python -m tests.bench soak --sessions 6 --chats 3

Runs the real platform (nats-server, redis-server, the API and ``--workers`` workers as
processes, a locked-down container per session) against the scripted model server in this
process. Each of ``--sessions`` sessions does ``--chats`` chats one after the other (all
sessions at once); every chat is a three-step script: a Bash ``echo``, a Write, then text
streamed in ~20 chunks ``--stream-delay`` (0.1 s) apart, so a fault lands mid-stream. Partway
the faults the platform promises to survive are injected:

- once ``--kill-at`` (default 1/3) of all chats completed, the worker that owns the most
  sessions is SIGKILLed: another worker adopts its sessions (heartbeat TTL 3 s) and the
  runner replays what it buffered meanwhile; a new worker is started 5 s later so that two
  keep running (``--no-replace-worker``: not);
- once ``--api-at`` (default 2/3) of all chats completed (and at least 3 s after the kill),
  the API is SIGKILLed and started again ``--api-down`` (1) seconds later.

Each session has one follower thread reading its whole ``GET /api/agents/{sid}/events``
stream, reconnecting with ``Last-Event-ID`` after the last id it received. Chats go out as
``POST /api/agents/{sid}/chat`` in JSON mode. The resend rule (a chat is never run twice):

1. every chat message carries a unique script marker; before every (re)send the follower's
   events are searched for the ``user.message`` holding it, and once it has appeared the chat
   is never sent again: its turn is then followed by the ``turn_id`` of that event;
2. a POST refused at connect (``ConnectError``/``ConnectTimeout``: the API is down) never
   reached the API, so it is sent again after 0.5 s;
3. any other failure (connection dropped after the request went out, a read timeout, a
   502/503/504) is ambiguous: the command may already be in JetStream, waiting for a worker.
   The driver then waits for the ``user.message`` until the follower has been connected for
   ``--accept-window`` seconds (default 20) since the failure — long enough for another
   worker to adopt a dead worker's session and run what was queued — and resends only if it
   still has not appeared. Should that guess ever be wrong, the second ``user.message`` with
   the same marker is counted as a duplicate turn.

Figures:

- *sessions completed*: sessions whose chats all completed (``turn.completed``, no error);
- *events lost*: events missing from completed turns as stored (each turn must hold
  ``user.message, turn.started, (tool.started, tool.completed) x2, message, turn.completed``
  in that order, the streamed deltas must add up to the message) plus stored events the
  follower never got (ids from a fresh ``GET /events`` from 0 after the sessions stopped,
  cross-checked against JetStream's message count for the session's subject);
- *duplicates*: ids a follower received twice (and, separately, the same stored event twice
  under different ids: a replay published twice);
- *turn latency* p50/p95: chat first sent → its ``turn.completed`` seen by the follower, for
  all turns and for those no fault happened during;
- *memory*: each session's container memory from ``docker stats`` sampled during the run (peak
  per session, their mean and max) and the RSS of the API and worker processes.

Figures go to stdout and to ``$AGC_STATE_DIR/bench/soak.json`` (``.agc/`` by default); the
stack's logs are copied next to it (``soak-logs/``). Every wait has a deadline: launches and
chats stop at ``--deadline`` seconds, the teardown is bounded too. The exit code is 1 when an
event was lost or duplicated, a session did not complete, an ``error`` event was stored or a
session was stopped twice (each session must end with exactly one ``session.stopped``), else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig, DeliverPolicy

from broker import subjects
from tests.bench.stats import percentile, tree_rss
from tests.modelserver.script import step, text, tool_use
from tests.modelserver.server import ModelServer
from tests.support.sse import iter_sse
from tests.support.stack import REPO, Stack, running_stack

MIB = 1024 * 1024
# The events every completed chat must hold, in this order (other types may come between).
KEY_TYPES = ("user.message", "turn.started", "tool.started", "tool.completed", "message")
EXPECTED_TURN = (
    "user.message",
    "turn.started",
    "tool.started",
    "tool.completed",
    "tool.started",
    "tool.completed",
    "message",
    "turn.completed",
)
TEARDOWN_BUDGET_S = 75.0


# ------------------------------------------------------------------------------ options
@dataclass(frozen=True, kw_only=True)
class Options:
    sessions: int = 10
    chats: int = 3
    workers: int = 2
    deadline: float = 270.0
    kill_at: float = 1 / 3
    api_at: float = 2 / 3
    faults: bool = True
    replace_worker: bool = True
    api_down: float = 1.0
    accept_window: float = 20.0
    turn_timeout: float = 150.0
    stream_delay: float = 0.1
    launch_parallel: int = 2
    stats_interval: float = 1.0
    config_id: str = "code-assistant"
    out: Path = Path(".agc/bench/soak.json")


def parse_args(argv: Sequence[str] | None) -> Options:
    state = Path(os.environ.get("AGC_STATE_DIR") or REPO / ".agc")
    p = argparse.ArgumentParser(
        prog="python -m tests.bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--sessions", type=int, default=10, help="concurrent sessions (default 10)")
    p.add_argument("--chats", type=int, default=3, help="chats per session (default 3)")
    p.add_argument("--workers", type=int, default=2, help="workers at the start (default 2)")
    p.add_argument(
        "--deadline",
        type=float,
        default=270.0,
        help="seconds for launches and chats; the teardown adds at most ~75 (default 270)",
    )
    p.add_argument(
        "--kill-at", type=float, default=1 / 3, help="SIGKILL a worker at this share of chats"
    )
    p.add_argument(
        "--api-at", type=float, default=2 / 3, help="SIGKILL+restart the API at this share"
    )
    p.add_argument("--no-faults", dest="faults", action="store_false", help="inject nothing")
    p.add_argument(
        "--no-replace-worker",
        dest="replace_worker",
        action="store_false",
        help="do not start a new worker after the kill",
    )
    p.add_argument("--api-down", type=float, default=1.0, help="seconds the API stays dead (1)")
    p.add_argument(
        "--accept-window",
        type=float,
        default=20.0,
        help="seconds to wait for an ambiguous chat's user.message before resending (20)",
    )
    p.add_argument(
        "--turn-timeout", type=float, default=150.0, help="seconds one chat may take (150)"
    )
    p.add_argument(
        "--stream-delay",
        type=float,
        default=0.1,
        help="seconds before each SSE chunk of a chat's final text (~20 chunks; default 0.1)",
    )
    p.add_argument(
        "--launch-parallel", type=int, default=2, help="launches in flight at once (default 2)"
    )
    p.add_argument(
        "--stats-interval", type=float, default=1.0, help="pause between docker stats samples (1)"
    )
    p.add_argument("--config", dest="config_id", default="code-assistant", help="config to launch")
    p.add_argument(
        "--out",
        type=Path,
        default=state / "bench" / "soak.json",
        help="JSON report path (default $AGC_STATE_DIR/bench/soak.json)",
    )
    a = p.parse_args(argv)
    for name in ("sessions", "chats", "workers", "launch_parallel"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.faults and a.workers < 2 and not a.replace_worker:
        p.error("killing the only worker needs --workers 2 or a replacement worker")
    return Options(
        sessions=a.sessions,
        chats=a.chats,
        workers=a.workers,
        deadline=a.deadline,
        kill_at=a.kill_at,
        api_at=max(a.api_at, a.kill_at),
        faults=a.faults,
        replace_worker=a.replace_worker,
        api_down=a.api_down,
        accept_window=a.accept_window,
        turn_timeout=a.turn_timeout,
        stream_delay=a.stream_delay,
        launch_parallel=a.launch_parallel,
        stats_interval=a.stats_interval,
        config_id=a.config_id,
        out=a.out,
    )


# ------------------------------------------------------------------------------ helpers
def dist(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), digits),
        "p95": round(percentile(values, 95), digits),
        "mean": round(sum(values) / len(values), digits),
        "max": round(max(values), digits),
    }


_SIZE_RE = re.compile(r"^\s*([0-9.]+)\s*([A-Za-z]*)")
_UNITS = {
    "b": 1,
    "kib": 1024,
    "mib": MIB,
    "gib": 1024 * MIB,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
}


def parse_size(value: str) -> float | None:
    """Bytes of a ``docker stats`` size such as ``142.4MiB``."""
    m = _SIZE_RE.match(value)
    if not m or m.group(2).lower() not in _UNITS:
        return None
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


class Clock:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0


def say(clock: Clock, msg: str) -> None:
    print(f"[{clock.now():6.1f}s] {msg}", flush=True)


# ------------------------------------------------------------------------------ follower
@dataclass(slots=True)
class Seen:
    id: int | None
    event: str
    data: dict[str, Any]
    t: float  # monotonic arrival time


class Follower(threading.Thread):
    """Reads a session's whole event stream, reconnecting with ``Last-Event-ID``."""

    def __init__(self, base_url: str, sid: str, key: str, hard_deadline: float) -> None:
        super().__init__(daemon=True, name=f"follow-{sid[-6:]}")
        self.base_url, self.sid, self.key = base_url, sid, key
        self.hard_deadline = hard_deadline
        self.events: list[Seen] = []
        self.cond = threading.Condition()
        self.halt = threading.Event()
        self.connected_since: float | None = None
        self.reconnects = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.error_samples: list[str] = []
        self.stopped_seen = False

    def run(self) -> None:
        last: int | None = None
        path = f"/api/agents/{self.sid}/events"
        while not self.halt.is_set() and time.monotonic() < self.hard_deadline:
            headers = {"Authorization": f"Bearer {self.key}"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            try:
                with (
                    httpx.Client(
                        base_url=self.base_url, timeout=httpx.Timeout(5.0, read=30.0)
                    ) as c,
                    c.stream("GET", path, headers=headers) as r,
                ):
                    if r.status_code != 200:
                        self.errors[f"http {r.status_code}"] += 1
                        raise httpx.HTTPError(f"status {r.status_code}")
                    with self.cond:
                        self.connected_since = time.monotonic()
                        self.cond.notify_all()
                    for ev in iter_sse(r):
                        with self.cond:
                            self.events.append(Seen(ev.id, ev.event, ev.data, time.monotonic()))
                            self.cond.notify_all()
                        if ev.id is not None:
                            last = ev.id
                        if ev.event == "session.stopped":
                            self.stopped_seen = True
                            return
                        if self.halt.is_set():
                            return
            except (httpx.HTTPError, OSError, ValueError) as exc:
                if not isinstance(exc, httpx.HTTPError) or "status" not in str(exc):
                    self.errors[type(exc).__name__] += 1
                    if len(self.error_samples) < 3:
                        doc = getattr(exc, "doc", None)
                        self.error_samples.append(
                            f"{exc!r} after id {last}" + (f": {doc[:300]!r}" if doc else "")
                        )
            finally:
                with self.cond:
                    self.connected_since = None
            self.reconnects += 1
            self.halt.wait(0.3)

    def find(self, pred: Callable[[Seen], bool], start: int = 0) -> Seen | None:
        with self.cond:
            for ev in self.events[start:]:
                if pred(ev):
                    return ev
        return None

    def wait_for(
        self,
        pred: Callable[[Seen], bool],
        until: float,
        give_up: Callable[[], bool] | None = None,
    ) -> Seen | None:
        """The first event matching ``pred`` (waiting until ``until`` or ``give_up()``)."""
        pos = 0
        with self.cond:
            while True:
                for ev in self.events[pos:]:
                    if pred(ev):
                        return ev
                pos = len(self.events)
                now = time.monotonic()
                if now >= until or (give_up is not None and give_up()):
                    return None
                self.cond.wait(min(0.5, until - now))


# ------------------------------------------------------------------------------ sessions
@dataclass
class Chat:
    index: int
    marker: str
    nonce: str
    t_sent: float
    t_done: float | None = None
    turn_id: str | None = None
    accepted_via: str = ""  # "response" (200) or "stream" (its user.message was seen)
    posts: int = 0
    refused: int = 0  # POSTs refused at connect (never reached the API)
    ambiguous: int = 0  # POSTs with an unknown outcome
    resent_after_ambiguous: int = 0
    outcome: str = "pending"  # completed | error | timeout | http NNN | aborted
    statuses: list[str] = field(default_factory=list)


@dataclass
class Session:
    sid: str
    key: str
    launch_s: float
    follower: Follower
    chats: list[Chat] = field(default_factory=list)
    error: str | None = None
    owner_at_start: str | None = None
    owner_at_end: str | None = None
    turns_recorded: int | None = None
    readback: list[Seen] = field(default_factory=list)
    stored: list[tuple[int, str, dict[str, Any]]] | None = None  # straight from JetStream
    final_status: str | None = None


class Progress:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.completed = 0
        self.drivers_done = 0

    def chat_done(self) -> None:
        with self.cond:
            self.completed += 1
            self.cond.notify_all()

    def driver_done(self) -> None:
        with self.cond:
            self.drivers_done += 1
            self.cond.notify_all()


def chat_script(model: ModelServer, nonce: str, index: int, delay: float) -> str:
    """Register the three-step script of one chat; return its marker."""
    filler = " ".join(f"w{k:02d}" for k in range(24))
    return model.add_script(
        f"soak-{nonce}",
        [
            [tool_use("Bash", {"command": f"echo soak-{nonce}", "description": "echo a marker"})],
            [
                tool_use(
                    "Write",
                    {"file_path": f"/workspace/soak-{index}.txt", "content": f"soak {nonce}\n"},
                )
            ],
            step(text(f"Chat {index} done: soak-{nonce}. {filler}", chunk=12), delay=delay),
        ],
    )


def expected_text(nonce: str, index: int) -> str:
    filler = " ".join(f"w{k:02d}" for k in range(24))
    return f"Chat {index} done: soak-{nonce}. {filler}"


class Driver(threading.Thread):
    """Sends one session's chats one after another, following each to its turn.completed."""

    def __init__(
        self,
        base_url: str,
        sess: Session,
        model: ModelServer,
        opts: Options,
        progress: Progress,
        deadline: float,
    ) -> None:
        super().__init__(daemon=True, name=f"drive-{sess.sid[-6:]}")
        self.base_url, self.sess, self.model, self.opts = base_url, sess, model, opts
        self.progress, self.deadline = progress, deadline

    def run(self) -> None:
        try:
            for i in range(self.opts.chats):
                if time.monotonic() >= self.deadline:
                    break
                time.sleep(random.uniform(0.0, 0.5))  # a little spread between sessions
                chat = self.one_chat(i)
                self.sess.chats.append(chat)
                if chat.outcome != "completed":
                    self.sess.error = f"chat {i}: {chat.outcome}"
                    break
                self.progress.chat_done()
        except Exception as exc:  # a bug here must not hang the run
            self.sess.error = f"driver crashed: {exc!r}"
        finally:
            self.progress.driver_done()

    def _post(self, message: str) -> httpx.Response:
        # A fresh connection per POST: a pooled one may be dead after the API restarted.
        read = max(1.0, min(self.opts.turn_timeout, self.deadline - time.monotonic()))
        with httpx.Client(
            base_url=self.base_url, timeout=httpx.Timeout(5.0, connect=3.0, read=read)
        ) as c:
            return c.post(
                f"/api/agents/{self.sess.sid}/chat",
                json={"message": message},
                headers={"Authorization": f"Bearer {self.sess.key}"},
            )

    def one_chat(self, index: int) -> Chat:
        nonce = f"{self.sess.sid[-8:]}-{index}-{uuid.uuid4().hex[:6]}"
        marker = chat_script(self.model, nonce, index, self.opts.stream_delay)
        message = f"soak chat {index} {marker}"
        follower = self.sess.follower
        chat = Chat(index=index, marker=marker, nonce=nonce, t_sent=time.monotonic())
        until = min(self.deadline, chat.t_sent + self.opts.turn_timeout)

        def is_mine(ev: Seen) -> bool:
            return ev.event == "user.message" and marker in str(ev.data.get("text", ""))

        def accept_wait(t_fail: float) -> Seen | None:
            """Rule 3: wait until the follower has been connected accept_window s since t_fail."""

            def window_over() -> bool:
                since = follower.connected_since
                return (
                    since is not None
                    and time.monotonic() - max(since, t_fail) >= self.opts.accept_window
                )

            return follower.wait_for(is_mine, until, give_up=window_over)

        while chat.turn_id is None:
            if time.monotonic() >= until:
                chat.outcome = "timeout (not accepted)"
                return chat
            seen = follower.find(is_mine)  # rule 1
            if seen is not None:
                chat.turn_id, chat.accepted_via = str(seen.data.get("turn_id")), "stream"
                break
            if chat.ambiguous:
                chat.resent_after_ambiguous += 1
            chat.posts += 1
            try:
                r = self._post(message)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # rule 2
                chat.refused += 1
                chat.statuses.append(type(exc).__name__)
                time.sleep(0.5)
                continue
            except httpx.HTTPError as exc:  # rule 3
                chat.ambiguous += 1
                chat.statuses.append(type(exc).__name__)
                seen = accept_wait(time.monotonic())
                if seen is not None:
                    chat.turn_id, chat.accepted_via = str(seen.data.get("turn_id")), "stream"
                continue
            chat.statuses.append(str(r.status_code))
            if r.status_code == 200:
                chat.turn_id = r.headers.get("x-turn-id") or str(r.json().get("turn_id"))
                chat.accepted_via = "response"
                break
            if r.status_code in (502, 503, 504):  # rule 3
                chat.ambiguous += 1
                seen = accept_wait(time.monotonic())
                if seen is not None:
                    chat.turn_id, chat.accepted_via = str(seen.data.get("turn_id")), "stream"
                continue
            chat.outcome = f"http {r.status_code}: {r.text[:200]}"
            return chat
        done = follower.wait_for(
            lambda ev: ev.event == "turn.completed" and ev.data.get("turn_id") == chat.turn_id,
            until,
        )
        if done is None:
            chat.outcome = "timeout (no turn.completed)"
        else:
            chat.t_done = done.t
            chat.outcome = "error" if done.data.get("is_error") else "completed"
        return chat


# ------------------------------------------------------------------------------ sampling
class Sampler(threading.Thread):
    """Samples container memory (``docker stats``) and API/worker RSS until halted."""

    def __init__(self, stack: Stack, sids: set[str], interval: float, deadline: float) -> None:
        super().__init__(daemon=True, name="sampler")
        self.stack, self.sids, self.interval, self.deadline = stack, sids, interval, deadline
        self.halt = threading.Event()
        self.container_peak: dict[str, float] = {}
        self.container_samples = 0
        self.rss_peak: dict[str, int] = {}
        self.errors: collections.Counter[str] = collections.Counter()
        self.docker = shutil.which("docker")
        self.api_gen = 1
        self._api_pid: int | None = None

    def sample_rss(self) -> None:
        api = self.stack.api
        if api is not None:
            if self._api_pid not in (None, api.pid):
                self.api_gen += 1
            self._api_pid = api.pid
            procs = [(f"api#{self.api_gen}", api.pid)]
        else:
            procs = []
        procs += [(f"worker {wid}", p.pid) for wid, p in list(self.stack.workers.items())]
        for name, pid in procs:
            rss = tree_rss(pid)
            if rss is not None:
                self.rss_peak[name] = max(self.rss_peak.get(name, 0), rss)

    def sample_containers(self) -> None:
        if self.docker is None:
            self.errors["no docker CLI"] += 1
            return
        try:
            out = subprocess.run(
                [self.docker, "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}"],
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            ).stdout
        except (subprocess.SubprocessError, OSError) as exc:
            self.errors[type(exc).__name__] += 1
            return
        self.container_samples += 1
        for line in out.splitlines():
            name, _, usage = line.partition("\t")
            sid = name.removeprefix("agc-")
            if sid not in self.sids:
                continue
            used = parse_size(usage.split("/")[0])
            if used is not None:
                self.container_peak[sid] = max(self.container_peak.get(sid, 0.0), used)

    def run(self) -> None:
        while not self.halt.is_set() and time.monotonic() < self.deadline:
            self.sample_rss()
            self.sample_containers()
            self.sample_rss()
            self.halt.wait(self.interval)


# ------------------------------------------------------------------------------ the run
def launch_one(
    stack: Stack, opts: Options, key: str, deadline: float, clock: Clock
) -> Session | str:
    t = time.monotonic()
    timeout = max(5.0, min(150.0, deadline - t))
    try:
        with httpx.Client(base_url=stack.base_url, timeout=timeout) as c:
            r = c.post("/api/agents/launch", json={"api_key": key, "config_id": opts.config_id})
    except httpx.HTTPError as exc:
        return f"launch failed: {exc!r}"
    if r.status_code != 200:
        return f"launch failed: {r.status_code} {r.text[:300]}"
    sid = str(r.json()["session_id"])
    follower = Follower(stack.base_url, sid, key, deadline + TEARDOWN_BUDGET_S)
    follower.start()
    say(clock, f"launched {sid} in {time.monotonic() - t:.2f} s")
    return Session(sid=sid, key=key, launch_s=time.monotonic() - t, follower=follower)


def list_sessions(stack: Stack, key: str) -> dict[str, dict[str, Any]] | None:
    """Every session of the run's key, by id (one cheap call: no live resource figures)."""
    try:
        with httpx.Client(base_url=stack.base_url, timeout=10.0) as c:
            r = c.get("/api/agents/sessions", headers={"Authorization": f"Bearer {key}"})
    except httpx.HTTPError:
        return None
    if r.status_code != 200:
        return None
    return {str(x["session_id"]): x for x in r.json()["sessions"]}


def owners(stack: Stack, key: str, sessions: list[Session]) -> dict[str, str | None]:
    listed = list_sessions(stack, key) or {}
    return {s.sid: listed.get(s.sid, {}).get("owner_worker") for s in sessions}


@dataclass
class Faults:
    kill_threshold: int
    api_threshold: int
    killed_worker: str | None = None
    killed_at: float | None = None
    killed_after_chats: int | None = None
    killed_sessions: list[str] = field(default_factory=list)
    replacement: str | None = None
    replacement_at: float | None = None
    api_killed_at: float | None = None
    api_back_at: float | None = None
    api_after_chats: int | None = None
    problems: list[str] = field(default_factory=list)
    # Monotonic windows [start, end] during which a fault was in effect.
    windows: list[tuple[float, float]] = field(default_factory=list)


def inject_faults(
    stack: Stack,
    sessions: list[Session],
    opts: Options,
    progress: Progress,
    faults: Faults,
    deadline: float,
    clock: Clock,
) -> None:
    """Run on the main thread until every driver finished (or the deadline)."""
    n = len(sessions)
    while time.monotonic() < deadline:
        with progress.cond:
            if progress.drivers_done >= n:
                return
            progress.cond.wait(0.2)
            done = progress.completed
        if not opts.faults:
            continue
        now = time.monotonic()
        if faults.killed_worker is None and done >= faults.kill_threshold:
            own = owners(stack, sessions[0].key, sessions)
            live = [w for w in own.values() if w in stack.workers]
            victim = (
                collections.Counter(live).most_common(1)[0][0]
                if live
                else next(iter(stack.workers))
            )
            faults.killed_sessions = [sid for sid, w in own.items() if w == victim]
            say(
                clock,
                f"SIGKILL worker {victim} (owns {len(faults.killed_sessions)} sessions) "
                f"after {done} chats",
            )
            stack.stop_worker(victim, kill=True)
            now = time.monotonic()
            faults.killed_worker, faults.killed_at, faults.killed_after_chats = victim, now, done
            faults.windows.append((now, now + 10.0))  # TTL 3 s + adoption + replay
        elif (
            faults.killed_worker is not None
            and faults.killed_at is not None
            and opts.replace_worker
            and faults.replacement is None
            and now - faults.killed_at >= 5.0
        ):
            faults.replacement = stack.start_worker()
            faults.replacement_at = now
            say(clock, f"started replacement worker {faults.replacement}")
        elif (
            faults.killed_at is not None
            and faults.api_killed_at is None
            and done >= faults.api_threshold
            and now - faults.killed_at >= 3.0
        ):
            say(clock, f"SIGKILL the API after {done} chats")
            stack.stop_api(kill=True)
            faults.api_killed_at, faults.api_after_chats = now, done
            time.sleep(opts.api_down)
            for attempt in (1, 2):
                try:
                    stack.start_api()
                    break
                except RuntimeError as exc:
                    faults.problems.append(f"API restart attempt {attempt} failed: {exc}"[:2000])
            faults.api_back_at = time.monotonic()
            faults.windows.append((now, faults.api_back_at + 3.0))
            say(clock, f"API back after {faults.api_back_at - now:.2f} s")


def readback(stack: Stack, sess: Session, until: float) -> list[Seen]:
    """Every stored event of a session, from a fresh stream from 0."""
    out: list[Seen] = []
    if time.monotonic() > until:
        return out
    try:
        with (
            httpx.Client(base_url=stack.base_url, timeout=httpx.Timeout(5.0, read=5.0)) as c,
            c.stream(
                "GET",
                f"/api/agents/{sess.sid}/events",
                headers={"Authorization": f"Bearer {sess.key}"},
            ) as r,
        ):
            if r.status_code != 200:
                return out
            for ev in iter_sse(r):
                out.append(Seen(ev.id, ev.event, ev.data, time.monotonic()))
                if ev.event == "session.stopped" or time.monotonic() > until:
                    break
    except (httpx.HTTPError, ValueError):
        pass  # a read timeout ends a live stream: what came so far is what is stored
    return out


async def stored_events(
    nats_url: str, sids: list[str]
) -> dict[str, list[tuple[int, str, dict[str, Any]]]]:
    """``(sequence, type, data)`` of every event JetStream holds per session, read directly."""
    nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=1)
    try:
        js = nc.jetstream()
        out: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
        for sid in sids:
            subject = subjects.events(sid)
            info = await js.stream_info(subjects.EVT_STREAM, subjects_filter=subject)
            count = int((info.state.subjects or {}).get(subject, 0))
            sub = await js.subscribe(
                subject,
                stream=subjects.EVT_STREAM,
                ordered_consumer=True,
                config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
            )
            got: list[tuple[int, str, dict[str, Any]]] = []
            try:
                while len(got) < count:
                    msg = await sub.next_msg(timeout=3)
                    data = json.loads(msg.data)
                    got.append((int(msg.metadata.sequence.stream), str(data.get("type")), data))
            except (TimeoutError, NatsTimeout):
                pass
            finally:
                await sub.unsubscribe()
            out[sid] = got
        return out
    finally:
        await nc.close()


def teardown(
    stack: Stack,
    sessions: list[Session],
    key: str,
    killed: str | None,
    until: float,
    clock: Clock,
) -> list[str]:
    problems: list[str] = []
    # A dead worker's sessions are adopted a few seconds after its heartbeat lapses.
    adopt_by = min(until - 50, time.monotonic() + 20)
    while True:
        listed = list_sessions(stack, key) or {}
        if not any(x.get("owner_worker") == killed for x in listed.values()):
            break
        if time.monotonic() >= adopt_by:
            break
        time.sleep(0.5)
    for s in sessions:
        info = listed.get(s.sid, {})
        s.owner_at_end = info.get("owner_worker")
        s.turns_recorded = info.get("turns")

    def stop(s: Session) -> None:
        try:
            with httpx.Client(
                base_url=stack.base_url, timeout=max(5.0, until - 20 - time.monotonic())
            ) as c:
                r = c.delete(
                    f"/api/agents/sessions/{s.sid}", headers={"Authorization": f"Bearer {s.key}"}
                )
            if r.status_code != 200:
                problems.append(f"DELETE {s.sid}: {r.status_code} {r.text[:200]}")
        except httpx.HTTPError as exc:
            problems.append(f"DELETE {s.sid}: {exc!r}")

    say(clock, f"stopping {len(sessions)} sessions")
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(stop, sessions))
    for s in sessions:
        s.follower.join(max(0.1, min(10.0, until - 15 - time.monotonic())))
        s.follower.halt.set()
        if not s.follower.stopped_seen:
            problems.append(f"follower of {s.sid} did not see session.stopped")
    say(clock, "reading every stream back from 0")
    for s in sessions:
        s.readback = readback(stack, s, until)
    listed = list_sessions(stack, key) or {}
    for s in sessions:
        s.final_status = listed.get(s.sid, {}).get("status")
    if stack.nats is not None:
        try:
            stored = asyncio.run(
                asyncio.wait_for(stored_events(stack.nats.url, [s.sid for s in sessions]), 30)
            )
            for s in sessions:
                s.stored = stored.get(s.sid)
        except Exception as exc:
            problems.append(f"JetStream count failed: {exc!r}")
    return problems


# ------------------------------------------------------------------------------ analysis
def check_turn(events: list[Seen], chat: Chat) -> tuple[int, list[str]]:
    """Events missing from one completed turn (as stored), and what was wrong."""
    mine = [e for e in events if e.data.get("turn_id") == chat.turn_id]
    got = [e.event for e in mine if e.event in (*KEY_TYPES, "turn.completed")]
    notes: list[str] = []
    missing = sum((collections.Counter(EXPECTED_TURN) - collections.Counter(got)).values())
    if tuple(got) != EXPECTED_TURN:
        notes.append(f"turn {chat.turn_id}: {got}")
    starts = [e.data.get("tool_use_id") for e in mine if e.event == "tool.started"]
    ends = [e.data.get("tool_use_id") for e in mine if e.event == "tool.completed"]
    if starts != ends:
        notes.append(f"turn {chat.turn_id}: tool ids started {starts} completed {ends}")
    outputs = [str(e.data.get("output", "")) for e in mine if e.event == "tool.completed"]
    if not outputs or f"soak-{chat.nonce}" not in outputs[0]:
        notes.append(f"turn {chat.turn_id}: Bash output {outputs[:1]}")
    if any(e.data.get("is_error") for e in mine if e.event == "tool.completed"):
        notes.append(f"turn {chat.turn_id}: a tool failed: {outputs}")
    want = expected_text(chat.nonce, chat.index)
    messages = [e.data.get("text") for e in mine if e.event == "message"]
    deltas = "".join(str(e.data.get("text", "")) for e in mine if e.event == "text.delta")
    if messages != [want]:
        notes.append(f"turn {chat.turn_id}: message {messages}")
    if deltas != want:
        missing += 1  # at least one text.delta is missing (or doubled)
        notes.append(f"turn {chat.turn_id}: deltas add up to {deltas!r}")
    return missing, notes


def analyse(
    sessions: list[Session], opts: Options, faults: Faults, clock: Clock
) -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = []
    lost_in_turns = missing_ids = dup_ids = out_of_order = content_dups = dup_turns = 0
    extra_ids = turn_count_mismatch = after_stop = stopped_twice = error_events = 0
    latencies: list[float] = []
    undisturbed: list[float] = []
    chats_completed = sessions_completed = 0
    chats: list[Chat] = [c for s in sessions for c in s.chats]
    for s in sessions:
        seen_ids = [e.id for e in s.follower.events if e.id is not None]
        counts = collections.Counter(seen_ids)
        dup_ids += sum(n - 1 for n in counts.values() if n > 1)
        out_of_order += sum(1 for a, b in itertools.pairwise(seen_ids) if b < a)
        stored = {e.id for e in s.readback if e.id is not None}
        expected_ids = set(stored)
        if s.stored is not None:
            # JetStream's own record: everything up to session.stopped must have reached the
            # follower; what comes after it no /events stream serves (reported on its own).
            stops = [(q, d) for q, t, d in s.stored if t == "session.stopped"]
            stop = stops[0][0] if stops else None
            after = [(q, t) for q, t, _ in s.stored if stop is not None and q > stop]
            if len(stops) > 1:
                stopped_twice += 1
                notes.append(
                    f"{s.sid}: {len(stops)} session.stopped events: "
                    + "; ".join(f"id {q} reason={d.get('reason')}" for q, d in stops)
                )
            for q, t, d in s.stored:
                if t == "error":
                    error_events += 1
                    notes.append(
                        f"{s.sid}: error event id {q}: {d.get('code')}: {d.get('message')}"
                    )
            if after:
                after_stop += len(after)
                notes.append(
                    f"{s.sid}: JetStream holds {len(after)} event(s) after session.stopped, "
                    f"which no /events stream serves: {after[:10]}"
                )
            reachable = {q for q, _, _ in s.stored} - {q for q, _ in after}
            if reachable - stored:
                notes.append(
                    f"{s.sid}: the readback from 0 lacks stored ids {sorted(reachable - stored)[:20]}"
                )
            expected_ids |= reachable
        missed = expected_ids - set(seen_ids)
        missing_ids += len(missed)
        if missed:
            notes.append(f"{s.sid}: follower never got ids {sorted(missed)[:20]}")
        extra = set(seen_ids) - stored
        if extra and s.readback and s.readback[-1].event == "session.stopped":
            extra_ids += len(extra)
            notes.append(f"{s.sid}: follower got ids not stored {sorted(extra)[:20]}")
        bodies = collections.Counter(
            json.dumps(e.data, sort_keys=True) for e in s.readback if e.event != "session.stopped"
        )
        content_dups += sum(n - 1 for n in bodies.values() if n > 1)
        markers = collections.Counter(
            m
            for e in s.readback
            if e.event == "user.message"
            for m in re.findall(r"\[\[script:[^\]]+\]\]", str(e.data.get("text", "")))
        )
        dup_turns += sum(n - 1 for n in markers.values() if n > 1)
        done = [c for c in s.chats if c.outcome == "completed"]
        chats_completed += len(done)
        if len(done) == opts.chats:
            sessions_completed += 1
        turn_source = s.readback or s.follower.events
        for c in done:
            missing, why = check_turn(turn_source, c)
            lost_in_turns += missing
            notes += why
            assert c.t_done is not None
            lat = c.t_done - c.t_sent
            latencies.append(lat)
            if not any(a <= c.t_done and c.t_sent <= b for a, b in faults.windows):
                undisturbed.append(lat)
        if s.turns_recorded is not None and s.turns_recorded != len(done):
            turn_count_mismatch += 1
            notes.append(f"{s.sid}: the record counts {s.turns_recorded} turns, {len(done)} ran")
        if s.error:
            notes.append(f"{s.sid}: {s.error}")
        for c in s.chats:
            if c.outcome != "completed":
                notes.append(f"{s.sid} chat {c.index}: {c.outcome} (posts {c.statuses})")
    figures = {
        "sessions_requested": opts.sessions,
        "sessions_launched": len(sessions),
        "sessions_completed": sessions_completed,
        "chats_requested": opts.sessions * opts.chats,
        "chats_completed": chats_completed,
        "events_lost": lost_in_turns + missing_ids,
        "events_lost_detail": {
            "missing_from_turns": lost_in_turns,
            "ids_not_received": missing_ids,
        },
        "duplicates": dup_ids,
        "duplicates_detail": {
            "ids_seen_twice": dup_ids,
            "ids_out_of_order": out_of_order,
            "stored_twice_by_content": content_dups,
            "duplicate_turns": dup_turns,
            "ids_received_not_stored": extra_ids,
        },
        "sessions_turn_count_mismatch": turn_count_mismatch,
        "events_stored_after_session_stopped": after_stop,
        "sessions_stopped_twice": stopped_twice,
        "error_events": error_events,
        "final_statuses": dict(collections.Counter(str(s.final_status) for s in sessions)),
        "events_in_jetstream": sum(len(s.stored or []) for s in sessions),
        "events_received": sum(len(s.follower.events) for s in sessions),
        "events_stored": sum(len(s.readback) for s in sessions),
        "follower_reconnects": sum(s.follower.reconnects for s in sessions),
        "follower_errors": dict(
            sum((s.follower.errors for s in sessions), collections.Counter[str]())
        ),
        "follower_error_samples": [x for s in sessions for x in s.follower.error_samples][:10],
        "turn_latency_s": dist(latencies),
        "turn_latency_undisturbed_s": dist(undisturbed),
        "launch_s": dist([s.launch_s for s in sessions]),
        "chats_out_of_the_ordinary": [
            {
                "session_id": s.sid,
                "chat": c.index,
                "outcome": c.outcome,
                "accepted_via": c.accepted_via,
                "posts": c.statuses,
                "resent_after_ambiguous": c.resent_after_ambiguous,
                "latency_s": None if c.t_done is None else round(c.t_done - c.t_sent, 3),
            }
            for s in sessions
            for c in s.chats
            if c.posts != 1 or c.accepted_via != "response" or c.outcome != "completed"
        ],
        "chat_posts": {
            "total": sum(c.posts for c in chats),
            "refused_at_connect": sum(c.refused for c in chats),
            "ambiguous": sum(c.ambiguous for c in chats),
            "resent_after_ambiguous": sum(c.resent_after_ambiguous for c in chats),
            "accepted_via_stream": sum(c.accepted_via == "stream" for c in chats),
        },
    }
    return figures, notes


def log_excerpts(tmp: Path, limit: int = 25) -> dict[str, list[str]]:
    """Warnings, errors and adoption lines of every log of the stack."""
    pat = re.compile(
        r"error|warn|traceback|exception|adopt|re-?attach|replay|failed", re.IGNORECASE
    )
    out: dict[str, list[str]] = {}
    for path in sorted(tmp.glob("*.log")):
        lines = [ln[:400] for ln in path.read_text(errors="replace").splitlines() if pat.search(ln)]
        if lines:
            out[path.name] = lines[-limit:]
    return out


def mib(value: float | None) -> float | None:
    return None if value is None else round(value / MIB, 1)


# ------------------------------------------------------------------------------ main
def run(opts: Options, model: ModelServer, tmp: Path, clock: Clock) -> dict[str, Any]:
    deadline = clock.t0 + opts.deadline
    total = opts.sessions * opts.chats
    faults = Faults(
        kill_threshold=max(1, math.ceil(total * opts.kill_at)),
        api_threshold=max(1, math.ceil(total * opts.api_at)),
    )
    report: dict[str, Any] = {}
    with running_stack(tmp, model.base_url, workers=opts.workers) as stack:
        started_workers = list(stack.workers)
        say(
            clock,
            f"platform up ({opts.workers} workers: {', '.join(started_workers)}); logs in {tmp}",
        )
        sids: set[str] = set()
        sampler = Sampler(stack, sids, opts.stats_interval, deadline + TEARDOWN_BUDGET_S)
        sampler.start()
        launched: list[Session] = []
        problems: list[str] = []
        key = f"sk-soak-{uuid.uuid4().hex}"  # one key: one cheap list call gives every owner
        with ThreadPoolExecutor(max_workers=opts.launch_parallel) as pool:
            for res in pool.map(
                lambda _: launch_one(stack, opts, key, deadline, clock), range(opts.sessions)
            ):
                if isinstance(res, Session):
                    launched.append(res)
                    sids.add(res.sid)
                else:
                    problems.append(res)
        for s, own in zip(launched, owners(stack, key, launched).values(), strict=True):
            s.owner_at_start = own
        say(
            clock,
            f"{len(launched)} sessions up; owners "
            f"{dict(collections.Counter(s.owner_at_start for s in launched))}",
        )
        progress = Progress()
        drivers = [Driver(stack.base_url, s, model, opts, progress, deadline) for s in launched]
        t_chats = time.monotonic()
        for d in drivers:
            d.start()
        inject_faults(stack, launched, opts, progress, faults, deadline, clock)
        for d in drivers:
            d.join(max(0.1, deadline - time.monotonic()))
        chats_s = time.monotonic() - t_chats
        say(clock, f"chats over after {chats_s:.1f} s: {progress.completed}/{total} completed")
        sampler.halt.set()
        sampler.join(30)
        problems += faults.problems
        problems += teardown(
            stack, launched, key, faults.killed_worker, deadline + TEARDOWN_BUDGET_S, clock
        )
        workers_at_end = list(stack.workers)
    # The stack is closed: every process and container is gone.
    figures, notes = analyse(launched, opts, faults, clock)
    peaks = [sampler.container_peak[s.sid] for s in launched if s.sid in sampler.container_peak]
    adopted = {s.sid: s.owner_at_end for s in launched if s.sid in set(faults.killed_sessions)}

    def in_flight(t: float | None, only: set[str] | None = None) -> int:
        """Chats sent but not yet completed at ``t`` (on the sessions in ``only``)."""
        if t is None:
            return 0
        return sum(
            1
            for s in launched
            if only is None or s.sid in only
            for c in s.chats
            if c.t_sent <= t and (c.t_done is None or c.t_done >= t)
        )

    report.update(
        figures,
        memory={
            "session_peak_mib": {s.sid: mib(sampler.container_peak.get(s.sid)) for s in launched},
            "session_peak_mean_mib": mib(sum(peaks) / len(peaks)) if peaks else None,
            "session_peak_max_mib": mib(max(peaks)) if peaks else None,
            "session_peak_min_mib": mib(min(peaks)) if peaks else None,
            "docker_stats_samples": sampler.container_samples,
            "process_rss_peak_mib": {k: mib(v) for k, v in sorted(sampler.rss_peak.items())},
            "sampler_errors": dict(sampler.errors),
        },
        faults={
            "injected": opts.faults,
            "worker_killed": faults.killed_worker,
            "worker_killed_at_s": _rel(clock, faults.killed_at),
            "worker_killed_after_chats": faults.killed_after_chats,
            "sessions_of_killed_worker": len(faults.killed_sessions),
            "turns_in_flight_on_killed_worker": in_flight(
                faults.killed_at, set(faults.killed_sessions)
            ),
            "turns_in_flight_at_api_kill": in_flight(faults.api_killed_at),
            "their_owner_at_end": adopted,
            "replacement_worker": faults.replacement,
            "api_killed_at_s": _rel(clock, faults.api_killed_at),
            "api_killed_after_chats": faults.api_after_chats,
            "api_down_s": (
                round(faults.api_back_at - faults.api_killed_at, 2)
                if faults.api_back_at and faults.api_killed_at
                else None
            ),
            "workers_at_start": started_workers,
            "workers_at_end": workers_at_end,
        },
        chats_phase_s=round(chats_s, 1),
        problems=problems,
        notes=notes[:200],
        log_excerpts=log_excerpts(tmp),
    )
    if opts.faults and faults.killed_worker is None:
        problems.append("the worker kill never happened (too few chats completed)")
    if opts.faults and faults.api_killed_at is None:
        problems.append("the API restart never happened (too few chats completed)")
    if figures["sessions_stopped_twice"] or figures["error_events"]:
        problems.append(
            f"{figures['sessions_stopped_twice']} session(s) stopped twice, "
            f"{figures['error_events']} error event(s): see notes"
        )
    if set(figures["final_statuses"]) != {"stopped"}:
        problems.append(f"statuses after DELETE: {figures['final_statuses']}")
    for sid, own in adopted.items():
        if own in (None, faults.killed_worker):
            problems.append(f"{sid} was not adopted (owner at the end: {own})")
    return report


def _rel(clock: Clock, t: float | None) -> float | None:
    return None if t is None else round(t - clock.t0, 1)


def print_report(r: dict[str, Any]) -> None:
    f, m = r["faults"], r["memory"]
    lat, und = r["turn_latency_s"], r["turn_latency_undisturbed_s"]
    d, lost = r["duplicates_detail"], r["events_lost_detail"]
    posts = r["chat_posts"]
    print()
    print(
        f"soak: {r['sessions_requested']} sessions x {r['params']['chats']} chats, "
        f"{r['params']['workers']} workers, {r['duration_s']:.0f} s"
    )
    if f["injected"]:
        print(
            f"  worker {f['worker_killed']} SIGKILLed at {f['worker_killed_at_s']} s after "
            f"{f['worker_killed_after_chats']} chats; its {f['sessions_of_killed_worker']} "
            f"sessions ({f['turns_in_flight_on_killed_worker']} turns in flight) ended on "
            f"{sorted(set(map(str, f['their_owner_at_end'].values())))}"
        )
        print(
            f"  API SIGKILLed at {f['api_killed_at_s']} s after {f['api_killed_after_chats']} "
            f"chats ({f['turns_in_flight_at_api_kill']} turns in flight), back "
            f"{f['api_down_s']} s later"
        )
    rows = [
        ("sessions completed", f"{r['sessions_completed']}/{r['sessions_requested']}"),
        ("chats completed", f"{r['chats_completed']}/{r['chats_requested']}"),
        (
            "events lost",
            f"{r['events_lost']} (missing from turns {lost['missing_from_turns']}, "
            f"ids not received {lost['ids_not_received']}; "
            f"{r['events_received']} received, {r['events_stored']} read back, "
            f"{r['events_in_jetstream']} in JetStream of which "
            f"{r['events_stored_after_session_stopped']} after session.stopped)",
        ),
        (
            "duplicates",
            f"{r['duplicates']} ids seen twice (out of order {d['ids_out_of_order']}, "
            f"stored twice {d['stored_twice_by_content']}, duplicate turns {d['duplicate_turns']})",
        ),
        (
            "turn latency",
            f"p50 {lat.get('p50')} s  p95 {lat.get('p95')} s  max {lat.get('max')} s (n={lat['n']});"
            f" no fault during: p50 {und.get('p50')} p95 {und.get('p95')} (n={und['n']})",
        ),
        (
            "chat POSTs",
            f"{posts['total']} (refused {posts['refused_at_connect']}, ambiguous "
            f"{posts['ambiguous']}, resent after ambiguous {posts['resent_after_ambiguous']}, "
            f"accepted via stream {posts['accepted_via_stream']})",
        ),
        ("reconnects", f"{r['follower_reconnects']} follower reconnects"),
        (
            "session ends",
            f"final statuses {r['final_statuses']}, {r['sessions_stopped_twice']} stopped "
            f"twice, {r['error_events']} error events",
        ),
        (
            "session memory",
            f"peak mean {m['session_peak_mean_mib']} MiB, max {m['session_peak_max_mib']} MiB, "
            f"min {m['session_peak_min_mib']} MiB ({m['docker_stats_samples']} docker stats samples)",
        ),
        (
            "process RSS peak",
            ", ".join(f"{k} {v} MiB" for k, v in m["process_rss_peak_mib"].items()),
        ),
    ]
    for name, value in rows:
        print(f"  {name:<20}{value}")
    for p in r["problems"]:
        print(f"  PROBLEM: {p[:500]}")
    for n in r["notes"][:20]:
        print(f"  note: {n[:300]}")


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    clock = Clock()
    tmp = Path(tempfile.mkdtemp(prefix="agc-soak-"))
    model = ModelServer("127.0.0.1", 0).start()
    say(clock, f"soak: {opts.sessions} sessions x {opts.chats} chats, {opts.workers} workers")
    try:
        report = run(opts, model, tmp, clock)
    finally:
        model.stop()
        logs = opts.out.parent / "soak-logs"
        with contextlib.suppress(OSError):
            shutil.rmtree(logs, ignore_errors=True)
            logs.mkdir(parents=True, exist_ok=True)
            for path in tmp.glob("*.log"):
                shutil.copy(path, logs / path.name)
        shutil.rmtree(tmp, ignore_errors=True)
    report = {
        "benchmark": "soak",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(clock.now(), 1),
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()},
        "host": {"cpus": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()]},
        **report,
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    print(f"\nreport: {opts.out}; logs: {opts.out.parent / 'soak-logs'}")
    ok = (
        report["events_lost"] == 0
        and report["duplicates"] == 0
        and report["duplicates_detail"]["duplicate_turns"] == 0
        and report["sessions_completed"] == opts.sessions
        and report["sessions_stopped_twice"] == 0
        and report["error_events"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
