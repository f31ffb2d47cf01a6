"""Agent benchmark: launch latency, turn latency, streaming latency the platform adds, idle memory.

Runs the real platform (nats-server, redis-server, the API and one worker as processes, each
session a locked-down container on host networking) against the scripted model server in this
process, and the same streaming turn through ``ClaudeSDKClient`` on the host as the baseline::

    python -m tests.bench agents [--launches 10] [--turns 20] [--idle 4] [--trace N] [--out PATH]

``--trace N`` adds N turns run under ``strace`` (root only) that split a text delta's trip into
its hops (CLI, runner, docker attach, worker, NATS, API, client), and an import-time profile of
the runner in a fresh agent container: the evidence for where the time goes.

Every time is ``time.monotonic()``, which is system-wide on Linux: the model server's emit
times, this process's SSE and NATS receive times compare directly. Event ``ts`` fields
(``time.time()`` in the runner, inside its container) and Docker's timestamps are mapped onto
the same clock through the wall-minus-monotonic offset sampled just before each measurement.

Figures go to stdout as a table and to ``$AGC_STATE_DIR/bench/agents.json`` (``.agc/`` by
default). The exit code is 0 once the benchmark ran (``--strict``: 1 when a target is missed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import httpx
import msgspec
import nats
from claude_agent_sdk import ClaudeSDKClient, ResultMessage, StreamEvent
from nats.aio.msg import Msg

from broker import subjects
from broker.runner_wire import Init
from configs.store import load_presets
from runner.options import build_options, prepare_dirs
from runner.settings import RunnerSettings
from tests.bench.stats import percentile, tree_rss
from tests.modelserver.script import step, text
from tests.modelserver.server import ModelServer
from tests.support.stack import IMAGE, REPO, Stack, running_stack

TARGET_LAUNCH_P50_S = 1.5
TARGET_ADDED_STREAM_P50_MS = 5.0
API_KEY = "bench-key-not-a-secret"
MIB = 1024 * 1024


# ------------------------------------------------------------------------------ options
@dataclass(frozen=True, kw_only=True)
class Options:
    """What to run; every count excludes the warm-up runs."""

    launches: int = 10
    turns: int = 20
    baseline_turns: int = 20
    chunks: int = 20
    chunk_delay: float = 0.05
    idle: int = 4
    warmup: int = 1
    idle_timeout: float = 20.0
    config_id: str = "code-assistant"
    skip: frozenset[str] = frozenset()
    out: Path = Path()
    strict: bool = False
    wait_quiet: float = 120.0
    trace: int = 0


SECTIONS = ("baseline", "launch", "turns", "memory")


def parse_args(argv: Sequence[str] | None) -> Options:
    state = Path(os.environ.get("AGC_STATE_DIR") or REPO / ".agc")
    p = argparse.ArgumentParser(
        prog="python -m tests.bench agents",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--launches", type=int, default=10, help="timed launches (default 10)")
    p.add_argument("--turns", type=int, default=20, help="timed platform turns (default 20)")
    p.add_argument(
        "--baseline-turns", type=int, default=None, help="timed SDK-only turns (default: --turns)"
    )
    p.add_argument("--chunks", type=int, default=20, help="text deltas per turn (default 20)")
    p.add_argument(
        "--chunk-delay",
        type=float,
        default=0.05,
        help="seconds the model server waits before each SSE chunk (default 0.05)",
    )
    p.add_argument("--idle", type=int, default=4, help="sessions for the memory figure (4)")
    p.add_argument(
        "--warmup", type=int, default=1, help="untimed launches and turns first (default 1)"
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=20.0,
        help="seconds to wait for idle containers to go quiet (default 20)",
    )
    p.add_argument(
        "--config",
        dest="config_id",
        default="code-assistant",
        choices=sorted(load_presets()),
        help="preset to launch (default code-assistant)",
    )
    p.add_argument(
        "--skip",
        action="append",
        choices=SECTIONS,
        default=[],
        help="leave a section out (repeatable)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=state / "bench" / "agents.json",
        help="JSON report path (default $AGC_STATE_DIR/bench/agents.json)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.add_argument(
        "--trace",
        type=int,
        default=0,
        metavar="N",
        help="also strace N turns to split a delta's trip into hops (root, strace; default 0)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        help="seconds to wait for other AgCluster workers on this host to end (default 120)",
    )
    a = p.parse_args(argv)
    for name in ("launches", "turns", "chunks", "idle"):
        if getattr(a, name) < 1:
            p.error(f"--{name} must be at least 1")
    return Options(
        launches=a.launches,
        turns=a.turns,
        baseline_turns=a.baseline_turns if a.baseline_turns is not None else a.turns,
        chunks=a.chunks,
        chunk_delay=a.chunk_delay,
        idle=a.idle,
        warmup=max(0, a.warmup),
        idle_timeout=a.idle_timeout,
        config_id=a.config_id,
        skip=frozenset(a.skip),
        out=a.out,
        strict=a.strict,
        wait_quiet=a.wait_quiet,
        trace=max(0, a.trace),
    )


# ------------------------------------------------------------------------------ statistics
def summarize(values: Sequence[float], unit: str) -> dict[str, Any]:
    """n, p50, p95, mean, min and max of ``values`` (already in ``unit``), rounded."""
    if not values:
        return {"unit": unit, "n": 0}
    return {
        "unit": unit,
        "n": len(values),
        "p50": round(percentile(values, 50), 4),
        "p95": round(percentile(values, 95), 4),
        "mean": round(sum(values) / len(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def wall_offset() -> float:
    """``time.time() - time.monotonic()``: maps a wall-clock stamp onto the monotonic clock."""
    return time.time() - time.monotonic()


def parse_rfc3339(stamp: str) -> float:
    """Seconds since the epoch of Docker's ``2026-01-02T03:04:05.123456789Z`` (ns cut to µs)."""
    m = re.fullmatch(r"(.+?\.\d{1,6})\d*Z", stamp) or re.fullmatch(r"(.+?)Z", stamp)
    if m is None:
        raise ValueError(f"not an RFC 3339 UTC time: {stamp!r}")
    return datetime.fromisoformat(m.group(1) + "+00:00").timestamp()


# ------------------------------------------------------------------------------ helpers
class _Peek(msgspec.Struct):
    type: str
    ts: float = 0.0
    text: str | None = None


_peek = msgspec.json.Decoder(_Peek)


@dataclass
class EventTap:
    """A plain core-NATS subscriber to every session's events, stamping when each arrives.

    It sees what the worker published as soon as JetStream stores it, which splits a delta's
    journey into the worker's half (runner → NATS) and the API's half (NATS → SSE client).
    """

    url: str
    seen: list[tuple[float, str, bytes]] = field(default_factory=list)
    _nc: Any = None

    async def start(self) -> None:
        self._nc = await nats.connect(self.url, name="agc-bench-tap")

        async def _on(msg: Msg) -> None:
            self.seen.append((time.monotonic(), msg.subject, msg.data))

        await self._nc.subscribe(subjects.ALL_EVENTS, cb=_on)

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()

    async def arrival(self, session_id: str, event_type: str, timeout: float = 1.0) -> float | None:
        """When the first ``event_type`` of a session arrived (waiting a little for it)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [at for at, ev in self.arrivals(session_id) if ev.type == event_type]
            if found or time.monotonic() > deadline:
                return found[0] if found else None
            await asyncio.sleep(0.01)

    def arrivals(self, session_id: str) -> list[tuple[float, _Peek]]:
        subject = subjects.events(session_id)
        return [(at, _peek.decode(data)) for at, subj, data in self.seen if subj == subject]


@dataclass
class Sse:
    at: float
    event: str
    data: dict[str, Any]


async def aiter_sse(response: httpx.Response) -> AsyncIterator[Sse]:
    """Yield each SSE event with the monotonic time its last line arrived."""
    event = "message"
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield Sse(time.monotonic(), event, json.loads("\n".join(data)))
            event, data = "message", []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


def stream_script(
    model: ModelServer, label: str, chunks: int, delay: float
) -> tuple[str, list[str]]:
    """Register a one-step script streaming ``chunks`` unique text deltas; return its marker."""
    tokens = [f"<{label}:{i:03d}>" for i in range(chunks)]
    width = len(tokens[0])
    marker = model.add_script(
        f"bench-{label}", [step(text("".join(tokens), chunk=width), delay=delay)]
    )
    return marker, tokens


def children_of() -> dict[int, list[int]]:
    """Every process's children, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    return children


def container_of(dc: docker.DockerClient, session_id: str) -> Any | None:
    found = dc.containers.list(all=True, filters={"label": f"agc.session={session_id}"})
    return found[0] if found else None


def container_memory(dc: docker.DockerClient, container_id: str) -> tuple[float, float]:
    """``(memory_stats.usage - cache, CPU %)`` of a container, from one ``docker stats`` sample."""
    s = dc.api.stats(container_id, stream=False)
    mem = s.get("memory_stats", {})
    st = mem.get("stats", {})
    used = int(mem.get("usage", 0)) - int(st.get("cache", st.get("inactive_file", 0)) or 0)
    cpu, pre = s.get("cpu_stats", {}), s.get("precpu_stats", {})
    dcpu = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get(
        "total_usage", 0
    )
    dsys = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    ncpu = cpu.get("online_cpus") or 1
    return float(max(used, 0)), (dcpu / dsys * ncpu * 100.0 if dsys > 0 else 0.0)


async def launch(http: httpx.AsyncClient, config_id: str) -> tuple[str, float]:
    """Launch a session; return its id and the seconds from request to ``running``."""
    t0 = time.monotonic()
    r = await http.post("/api/agents/launch", json={"api_key": API_KEY, "config_id": config_id})
    took = time.monotonic() - t0
    if r.status_code != 200 or r.json().get("status") != "running":
        raise RuntimeError(f"launch failed: {r.status_code} {r.text}")
    return str(r.json()["session_id"]), took


async def delete(http: httpx.AsyncClient, dc: docker.DockerClient, session_id: str) -> None:
    """Delete a session and wait until its container is gone, so it cannot skew what follows."""
    await http.delete(f"/api/agents/sessions/{session_id}")
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        if await asyncio.to_thread(container_of, dc, session_id) is None:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the container of {session_id} was not removed in 30 s")


# ------------------------------------------------------------------------------ baseline
async def run_baseline(model: ModelServer, opts: Options, run: str) -> dict[str, Any]:
    """The same streaming turn through the SDK on the host: model emit → StreamEvent receipt.

    The options are the runner's own (:func:`runner.options.build_options` for the same
    config: system prompt, tools, offline env, ``include_partial_messages``), pointed at a
    temp dir instead of the container's volumes.
    """
    tmp = Path(tempfile.mkdtemp(prefix="agc-bench-sdk-"))
    settings = RunnerSettings(workspace=tmp / "workspace", home=tmp / "home", tmp_root=tmp / "tmp")
    for d in (settings.workspace, settings.home, settings.tmp_root):
        d.mkdir(parents=True)
    config = load_presets()[opts.config_id].to_wire()
    init = Init(
        session_id=f"conv-{uuid.uuid4().hex}",
        config=config,
        api_key=API_KEY,
        env={"ANTHROPIC_BASE_URL": model.base_url, "CLAUDE_CODE_MAX_RETRIES": "0"},
    )
    stderr: deque[str] = deque(maxlen=100)
    options = build_options(init, settings, resume=None, stderr=stderr.append)
    prepare_dirs(options.env)
    ttfe: list[float] = []
    ttft: list[float] = []
    per_chunk: list[float] = []
    missing = 0
    t_connect = time.monotonic()
    try:
        async with ClaudeSDKClient(options) as client:
            connect_s = time.monotonic() - t_connect
            for turn in range(opts.warmup + opts.baseline_turns):
                marker, tokens = stream_script(
                    model, f"{run}b{turn:03d}", opts.chunks, opts.chunk_delay
                )
                got: dict[str, float] = {}
                first: float | None = None
                first_text: float | None = None
                t0 = time.monotonic()
                await client.query(f"{marker} stream a reply")
                async for msg in client.receive_response():
                    now = time.monotonic()
                    first = first or now
                    if isinstance(msg, StreamEvent):
                        ev = msg.event
                        delta = ev.get("delta") or {}
                        if (
                            ev.get("type") == "content_block_delta"
                            and delta.get("type") == "text_delta"
                        ):
                            got[str(delta.get("text"))] = now
                            first_text = first_text or now
                    elif isinstance(msg, ResultMessage) and msg.is_error:
                        raise RuntimeError(f"baseline turn failed: {msg.result}")
                if turn < opts.warmup:
                    continue
                if first is not None:
                    ttfe.append((first - t0) * 1000)
                if first_text is not None:
                    ttft.append((first_text - t0) * 1000)
                for tok in tokens:
                    if tok in got and tok in model.emitted:
                        per_chunk.append((got[tok] - model.emitted[tok]) * 1000)
                    else:
                        missing += 1
    except Exception as exc:
        raise RuntimeError(
            f"SDK baseline failed: {exc}\nCLI stderr:\n" + "\n".join(stderr)
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "connect_s": round(connect_s, 4),
        "first_message_ms": summarize(ttfe, "ms"),
        "first_text_delta_ms": summarize(ttft, "ms"),
        "emit_to_receipt_ms": summarize(per_chunk, "ms"),
        "missing_deltas": missing,
    }


# ------------------------------------------------------------------------------ platform
_RUNNER_LOG = {
    "runner_started": re.compile(r"runner starting"),
    "init_received": re.compile(r"init session="),
    "sdk_connected": re.compile(r"SDK client connected in"),
}


def launch_breakdown(
    dc: docker.DockerClient,
    session_id: str,
    t0: float,
    t1: float,
    ready_at: float | None,
    offset: float,
) -> dict[str, float]:
    """Where one launch's time went, in ms from the request, from Docker and the runner's log."""
    marks: dict[str, float] = {}
    c = container_of(dc, session_id)
    if c is not None:
        info = dc.api.inspect_container(c.id)
        marks["container_created"] = parse_rfc3339(info["Created"]) - offset
        marks["container_started"] = parse_rfc3339(info["State"]["StartedAt"]) - offset
        logs = dc.api.logs(c.id, stdout=False, stderr=True, timestamps=True).decode(
            errors="replace"
        )
        for line in logs.splitlines():
            stamp, _, rest = line.partition(" ")
            for name, rx in _RUNNER_LOG.items():
                if name not in marks and rx.search(rest):
                    marks[name] = parse_rfc3339(stamp) - offset
    if ready_at is not None:
        marks["ready_on_nats"] = ready_at
    marks["response"] = t1
    return {k: round((v - t0) * 1000, 2) for k, v in sorted(marks.items(), key=lambda kv: kv[1])}


LAUNCH_STAGES = (
    # (label, from mark, to mark): consecutive marks of launch_breakdown
    ("API + queue + worker → container created", "request", "container_created"),
    ("container created → started (attach, start)", "container_created", "container_started"),
    ("container start → runner up (python, imports)", "container_started", "runner_started"),
    ("runner up → init received", "runner_started", "init_received"),
    ("init → SDK connected (CLI start, initialize)", "init_received", "sdk_connected"),
    ("SDK connected → session.ready on NATS", "sdk_connected", "ready_on_nats"),
    ("ready on NATS → HTTP response", "ready_on_nats", "response"),
)


def stage_summary(samples: list[dict[str, float]]) -> list[dict[str, Any]]:
    out = []
    for label, a, b in LAUNCH_STAGES:
        vals = [s[b] - s.get(a, 0.0) for s in samples if b in s and (a == "request" or a in s)]
        out.append({"stage": label, **summarize(vals, "ms")})
    return out


async def run_launches(
    http: httpx.AsyncClient, dc: docker.DockerClient, tap: EventTap, opts: Options
) -> dict[str, Any]:
    times: list[float] = []
    stages: list[dict[str, float]] = []
    failures: list[str] = []
    warm = opts.warmup
    while len(times) < opts.launches:
        offset = wall_offset()
        t0 = time.monotonic()
        try:
            sid, took = await launch(http, opts.config_id)
        except RuntimeError as exc:
            failures.append(str(exc)[:1000])
            print(f"  launch failed: {str(exc)[:200]}", flush=True)
            if len(failures) > opts.launches:
                raise
            continue
        ready = await tap.arrival(sid, "session.ready")
        marks = await asyncio.to_thread(launch_breakdown, dc, sid, t0, t0 + took, ready, offset)
        await delete(http, dc, sid)
        if warm > 0:
            warm -= 1
            print(f"  launch warm-up: {took:.3f} s", flush=True)
            continue
        times.append(took)
        stages.append(marks)
        print(f"  launch {len(times):>2}: {took:.3f} s", flush=True)
    return {
        "launch_s": summarize(times, "s"),
        "stages_ms": stage_summary(stages),
        "samples_s": [round(t, 4) for t in times],
        "failures": failures,
    }


class SessionLost(RuntimeError):
    """The session died under the benchmark (e.g. another stack's worker removed its container)."""


@dataclass
class TurnObs:
    t0: float
    first: float | None = None
    first_text: float | None = None
    deltas: dict[str, Sse] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)


async def chat_turn(http: httpx.AsyncClient, session_id: str, message: str) -> TurnObs:
    """Run one chat over SSE; raise :class:`SessionLost` when it cannot complete."""
    obs = TurnObs(time.monotonic())
    completed = False
    async with http.stream(
        "POST",
        f"/api/agents/{session_id}/chat",
        json={"message": message},
        headers={"Accept": "text/event-stream"},
    ) as r:
        if r.status_code in (404, 409):
            raise SessionLost(f"chat refused: {r.status_code} {(await r.aread())!r}")
        if r.status_code != 200:
            raise RuntimeError(f"chat failed: {r.status_code} {(await r.aread())!r}")
        async for ev in aiter_sse(r):
            obs.first = obs.first or ev.at
            if ev.event == "text.delta":
                obs.deltas[str(ev.data.get("text"))] = ev
                obs.first_text = obs.first_text or ev.at
            elif ev.event == "error":
                obs.errors.append(ev.data)
            elif ev.event == "turn.completed":
                completed = not ev.data.get("is_error")
    if not completed:
        raise SessionLost(f"the turn did not complete: {obs.errors[-1:] or 'stream ended'}")
    return obs


async def run_turns(
    http: httpx.AsyncClient,
    dc: docker.DockerClient,
    tap: EventTap,
    model: ModelServer,
    opts: Options,
    run: str,
) -> dict[str, Any]:
    sid, _ = await launch(http, opts.config_id)
    ttfe: list[float] = []
    ttft: list[float] = []
    total: list[float] = []
    seg_sdk: list[float] = []
    seg_worker: list[float] = []
    seg_api: list[float] = []
    missing = 0
    lost: list[str] = []
    warm = opts.warmup
    turn = 0
    try:
        while len(ttfe) < opts.turns:
            turn += 1
            marker, tokens = stream_script(
                model, f"{run}p{turn:03d}", opts.chunks, opts.chunk_delay
            )
            offset = wall_offset()
            try:
                obs = await chat_turn(http, sid, f"{marker} stream a reply")
            except SessionLost as exc:
                lost.append(str(exc))
                print(f"  session lost ({exc}); relaunching", flush=True)
                if len(lost) > 5:
                    raise RuntimeError(
                        "sessions keep dying; is another stack sharing the engine?"
                    ) from exc
                with contextlib.suppress(Exception):
                    await delete(http, dc, sid)
                sid, _ = await launch(http, opts.config_id)
                warm = opts.warmup  # a fresh session warms up again
                continue
            if warm > 0:
                warm -= 1
                continue
            # A completed turn has at least its turn.completed event.
            ttfe.append(((obs.first or obs.t0) - obs.t0) * 1000)
            if obs.first_text is not None:
                ttft.append((obs.first_text - obs.t0) * 1000)
            on_nats = {ev.text: at for at, ev in tap.arrivals(sid) if ev.type == "text.delta"}
            for tok in tokens:
                emitted = model.emitted.get(tok)
                sse = obs.deltas.get(tok)
                if emitted is None or sse is None:
                    missing += 1
                    continue
                total.append((sse.at - emitted) * 1000)
                runner_at = float(sse.data.get("ts", 0.0)) - offset
                seg_sdk.append((runner_at - emitted) * 1000)
                if tok in on_nats:
                    seg_worker.append((on_nats[tok] - runner_at) * 1000)
                    seg_api.append((sse.at - on_nats[tok]) * 1000)
    finally:
        with contextlib.suppress(Exception):
            await delete(http, dc, sid)
    return {
        "first_event_ms": summarize(ttfe, "ms"),
        "first_text_delta_ms": summarize(ttft, "ms"),
        "emit_to_sse_ms": summarize(total, "ms"),
        "segments_ms": {
            "model emit → runner event (CLI + SDK + runner, in the container)": summarize(
                seg_sdk, "ms"
            ),
            "runner event → on NATS (stdout, docker attach, worker relay + publish)": summarize(
                seg_worker, "ms"
            ),
            "on NATS → SSE client (JetStream consumer, API, SSE, HTTP)": summarize(seg_api, "ms"),
        },
        "missing_deltas": missing,
        "sessions_lost": lost,
    }


async def run_memory(
    http: httpx.AsyncClient, dc: docker.DockerClient, stack: Stack, opts: Options
) -> dict[str, Any]:
    assert stack.api is not None
    worker_pid = next(iter(stack.workers.values())).pid
    worker_before = tree_rss(worker_pid) or 0
    sids = []
    try:
        for _ in range(opts.idle):
            sid, _took = await launch(http, opts.config_id)
            sids.append(sid)
        containers = [c.id for sid in sids if (c := container_of(dc, sid)) is not None]
        # Idle: every container's CPU under 2 % in one docker stats sample (or the timeout).
        deadline = time.monotonic() + opts.idle_timeout
        while True:
            samples = await asyncio.gather(
                *(asyncio.to_thread(container_memory, dc, cid) for cid in containers)
            )
            if all(cpu < 2.0 for _m, cpu in samples) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        mem = [m / MIB for m, _cpu in samples]
        worker_after = tree_rss(worker_pid) or 0
        api_rss = tree_rss(stack.api.pid) or 0
    finally:
        for sid in sids:
            await delete(http, dc, sid)
    return {
        "sessions": len(mem),
        "container_mib": summarize(mem, "MiB"),
        "container_cpu_percent_at_sample": [round(c, 2) for _m, c in samples],
        "worker_rss_mib": round(worker_after / MIB, 1),
        "worker_rss_per_session_mib": round(
            (worker_after - worker_before) / MIB / max(len(mem), 1), 2
        ),
        "api_rss_mib": round(api_rss / MIB, 1),
    }


async def run_platform(stack: Stack, model: ModelServer, opts: Options, run: str) -> dict[str, Any]:
    dc = docker.from_env(timeout=60)
    assert stack.nats is not None
    tap = EventTap(stack.nats.url)
    await tap.start()
    out: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    try:
        async with httpx.AsyncClient(
            base_url=stack.base_url, headers=headers, timeout=180.0
        ) as http:
            if "launch" not in opts.skip:
                print("launch latency ...", flush=True)
                out["launch"] = await run_launches(http, dc, tap, opts)
            if "turns" not in opts.skip:
                print("turns and streaming ...", flush=True)
                out["turns"] = await run_turns(http, dc, tap, model, opts, run)
            if "memory" not in opts.skip:
                print(f"memory of {opts.idle} idle sessions ...", flush=True)
                out["memory"] = await run_memory(http, dc, stack, opts)
            if opts.trace:
                print(f"tracing {opts.trace} turns with strace ...", flush=True)
                out["trace"] = await run_trace(http, dc, stack, model, opts, run)
    finally:
        await tap.close()
        dc.close()
    return out


# ------------------------------------------------------------------------------ trace
_STRACE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()")
_TOKEN = re.compile(r"<[0-9a-z]+:\d{3}>")
_READS = frozenset({"read", "readv", "recvfrom", "recvmsg"})
_WRITES = frozenset({"write", "writev", "sendto", "sendmsg"})

TRACE_HOPS = (
    "model emit → CLI reads it (loopback HTTP)",
    "CLI reads → runner reads CLI stdout (CLI, pipe)",
    "runner reads → runner event ts (SDK parse, translate)",
    "runner event ts → runner write(1) (emitter, writer thread)",
    "runner write(1) → worker reads (docker attach)",
    "worker reads → worker sends to NATS (decode, js.publish)",
    "worker sends → API reads from NATS (JetStream store, push consumer)",
    "API reads → API writes SSE (nats-py, feed, Litestar)",
    "API writes → client has the event (loopback HTTP, httpx)",
)


def strace_hits(path: Path) -> dict[tuple[str, str], float]:
    """First time a traced process read (``r``) / wrote (``w``) each token: ``{(token, kind): t}``."""
    hits: dict[tuple[str, str], float] = {}
    pending: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        m = _STRACE.match(line)
        if m is None:
            continue
        pid, at = m.group(1), float(m.group(2))
        name = m.group(3) or m.group(4)
        if m.group(3):
            pending.pop(pid, None)
        elif "<unfinished" in line:
            pending[pid] = name
        kind = "r" if name in _READS else "w" if name in _WRITES else ""
        if not kind or (kind == "r" and "<unfinished" in line):
            continue  # a read's data shows when it resumes
        for tok in _TOKEN.findall(line):
            hits.setdefault((tok, kind), at)
    return hits


def agent_pids(dc: docker.DockerClient, session_id: str) -> tuple[int, int]:
    """Host pids of a session's runner and its CLI (tini → python -m runner → claude)."""
    c = container_of(dc, session_id)
    assert c is not None, "the session has no container"
    tini = int(dc.api.inspect_container(c.id)["State"]["Pid"])
    children = children_of()
    runner = children[tini][0]
    for pid in children.get(runner, []):
        if b"claude" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return runner, pid
    raise RuntimeError("the runner has no CLI child")


async def run_trace(
    http: httpx.AsyncClient,
    dc: docker.DockerClient,
    stack: Stack,
    model: ModelServer,
    opts: Options,
    run: str,
) -> dict[str, Any]:
    """Split each delta's trip into hops from ``strace -ttt`` of the CLI, runner, worker and API.

    strace stops a process at every syscall, so the hops are slower than untraced; they
    show where the time goes, not how much there is.
    """
    if shutil.which("strace") is None:
        return {"error": "strace is not installed"}
    assert stack.api is not None
    sid, _ = await launch(http, opts.config_id)
    tmp = Path(tempfile.mkdtemp(prefix="agc-bench-strace-"))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    rows: list[tuple[str, float, float, float]] = []
    try:
        await chat_turn(http, sid, "warm up")
        runner, cli = await asyncio.to_thread(agent_pids, dc, sid)
        pids = {
            "cli": cli,
            "runner": runner,
            "worker": next(iter(stack.workers.values())).pid,
            "api": stack.api.pid,
        }
        for name, pid in pids.items():
            procs[name] = subprocess.Popen(
                [
                    "strace",
                    "-f",
                    "-ttt",
                    "-s",
                    "65536",
                    "-o",
                    str(tmp / f"{name}.strace"),
                    "-e",
                    "trace=" + ",".join(sorted(_READS | _WRITES)),
                    "-p",
                    str(pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        await asyncio.sleep(1.0)
        for turn in range(opts.trace):
            marker, tokens = stream_script(
                model, f"{run}t{turn:03d}", opts.chunks, opts.chunk_delay
            )
            offset = wall_offset()
            obs = await chat_turn(http, sid, f"{marker} stream a reply")
            for tok in tokens:
                if tok in obs.deltas and tok in model.emitted:
                    ev = obs.deltas[tok]
                    rows.append(
                        (tok, model.emitted[tok] + offset, float(ev.data["ts"]), ev.at + offset)
                    )
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGINT)
        for proc in procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        with contextlib.suppress(Exception):
            await delete(http, dc, sid)
    hits = {name: strace_hits(tmp / f"{name}.strace") for name in procs}
    shutil.rmtree(tmp, ignore_errors=True)
    hops: list[list[float]] = [[] for _ in TRACE_HOPS]
    for tok, emit, ts, client in rows:
        marks = [
            emit,
            hits["cli"].get((tok, "r")),
            hits["runner"].get((tok, "r")),
            ts,
            hits["runner"].get((tok, "w")),
            hits["worker"].get((tok, "r")),
            hits["worker"].get((tok, "w")),
            hits["api"].get((tok, "r")),
            hits["api"].get((tok, "w")),
            client,
        ]
        for i in range(len(TRACE_HOPS)):
            a, b = marks[i], marks[i + 1]
            if a is not None and b is not None:
                hops[i].append((b - a) * 1000)
    return {
        "turns": opts.trace,
        "note": "under strace: every hop is slower than untraced; read the shares, not the sizes",
        "hops_ms": [
            {"hop": h, **summarize(v, "ms")} for h, v in zip(TRACE_HOPS, hops, strict=True)
        ],
        "runner_imports_ms": await asyncio.to_thread(runner_import_profile),
    }


_IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def runner_import_profile() -> dict[str, float]:
    """Cumulative import time (ms) of the runner's heaviest modules, in a fresh agent container."""
    out = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            IMAGE,
            "python3",
            "-X",
            "importtime",
            "-c",
            "import runner.main",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    ).stderr
    cumulative: dict[str, float] = {}
    for line in out.splitlines():
        if (m := _IMPORT_LINE.match(line)) is not None:
            cumulative[m.group(4)] = int(m.group(2)) / 1000
    keep = (
        "runner.main",
        "claude_agent_sdk",
        "mcp",
        "mcp.client",
        "mcp.server",
        "mcp.types",
        "mcp_types",
        "pydantic",
        "anyio",
        "asyncio",
        "msgspec",
        "broker.events",
    )
    return {name: round(cumulative[name], 1) for name in keep if name in cumulative}


# ------------------------------------------------------------------------------ the stack
def other_workers() -> list[str]:
    """AgCluster workers on this host that are not ours (any stack, any container).

    Every worker's reconcile removes each ``agc.managed`` container its own Redis does not
    know, so two stacks on one Docker engine remove each other's sessions within seconds.
    """
    mine = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == mine:
            continue
        with contextlib.suppress(OSError):
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "agcluster.cli worker" in cmd or re.search(r"-m workers(\s|$)", cmd):
                found.append(f"pid {entry.name}: {cmd.strip()[:100]}")
    return found


def wait_for_quiet(seconds: float) -> list[str]:
    """Wait (bounded) until no other AgCluster worker runs here; return those still running."""
    deadline = time.monotonic() + seconds
    others = other_workers()
    if others:
        print(
            f"waiting up to {seconds:.0f} s for {len(others)} other AgCluster worker(s) to end "
            "(stacks sharing the Docker engine remove each other's containers):",
            flush=True,
        )
        for line in others:
            print(f"  {line}", flush=True)
    while others and time.monotonic() < deadline:
        time.sleep(5.0)
        others = other_workers()
    if others:
        print("warning: running next to other stacks; sessions may be lost", flush=True)
    return others


def provenance() -> dict[str, Any]:
    """Commit, uncommitted platform changes and the agent image the figures belong to."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout

    image: dict[str, Any] = {"name": IMAGE}
    with contextlib.suppress(Exception):
        info = docker.from_env(timeout=30).api.inspect_image(IMAGE)
        image.update(
            id=info["Id"][:19], built=(info["Config"].get("Labels") or {}).get("agc.built")
        )
    changed = git(
        "status",
        "--porcelain",
        "--",
        "agcluster",
        "api",
        "broker",
        "configs",
        "runner",
        "workers",
        "compose",
    )
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip() or "unknown",
        # porcelain lines are "XY path": the status columns may be blank, so no strip()
        "uncommitted_platform_changes": [line[3:] for line in changed.splitlines() if line],
        "image": image,
    }


# ------------------------------------------------------------------------------ report
def _fmt(summary: dict[str, Any], key: str) -> str:
    if not summary.get("n"):
        return "-"
    v = summary[key]
    return f"{v:.3f}" if summary["unit"] == "s" else f"{v:.1f}" if v >= 100 else f"{v:.2f}"


def verdicts(report: dict[str, Any]) -> dict[str, bool]:
    out: dict[str, bool] = {}
    launch_s = report.get("launch", {}).get("launch_s", {})
    if launch_s.get("n"):
        out["launch_p50"] = launch_s["p50"] <= TARGET_LAUNCH_P50_S
    added = report.get("added_stream_ms")
    if added:
        out["added_stream_p50"] = added["p50"] <= TARGET_ADDED_STREAM_P50_MS
    return out


def print_report(report: dict[str, Any]) -> None:
    rows: list[tuple[str, dict[str, Any], str]] = []
    ok = report["targets_met"]

    def mark(key: str, target: str) -> str:
        return "" if key not in ok else f"{target}  {'OK' if ok[key] else 'MISSED'}"

    if launch := report.get("launch"):
        rows.append(
            (
                "launch → running (" + report["config_id"] + ")",
                launch["launch_s"],
                mark("launch_p50", f"p50 ≤ {TARGET_LAUNCH_P50_S} s"),
            )
        )
        rows += [("  " + s["stage"], s, "") for s in launch["stages_ms"]]
    if turns := report.get("turns"):
        rows.append(("turn: chat → first SSE event", turns["first_event_ms"], ""))
        rows.append(("turn: chat → first text.delta", turns["first_text_delta_ms"], ""))
    if base := report.get("baseline"):
        rows.append(("  SDK only: query → first message", base["first_message_ms"], ""))
        rows.append(("  SDK only: query → first text_delta", base["first_text_delta_ms"], ""))
    if turns:
        rows.append(("stream: model emit → SSE client", turns["emit_to_sse_ms"], ""))
        rows += [("  " + k, v, "") for k, v in turns["segments_ms"].items()]
    if base:
        rows.append(
            ("stream: model emit → SDK StreamEvent (baseline)", base["emit_to_receipt_ms"], "")
        )
    if added := report.get("added_stream_ms"):
        rows.append(
            (
                "stream: added by the platform",
                {**added, "unit": "ms", "n": "-"},
                mark("added_stream_p50", f"p50 ≤ {TARGET_ADDED_STREAM_P50_MS} ms"),
            )
        )
    width = max((len(r[0]) for r in rows), default=40)
    print()
    print(
        f"AgCluster agents benchmark — {report['host']['cpus']} CPUs, load "
        f"{report['host']['load_before']} → {report['host']['load_after']}, "
        f"image {report['image'].get('id', report['image']['name'])}, commit {report['commit']}"
        + (" (+ uncommitted platform changes)" if report["uncommitted_platform_changes"] else "")
    )
    if rows:
        header = f"{'p50':>8}  {'p95':>8}  {'mean':>8}  {'max':>8}  unit"
        print(f"{'metric':<{width}}  {'n':>4}  {header}")
    for label, s, note in rows:
        n = s.get("n", 0)
        cols = "  ".join(
            f"{_fmt(s, k) if k in s else '-':>8}" for k in ("p50", "p95", "mean", "max")
        )
        print(f"{label:<{width}}  {n!s:>4}  {cols}  {s.get('unit', ''):<4} {note}")
    if mem := report.get("memory"):
        c = mem["container_mib"]
        print(
            f"\nmemory per idle session ({mem['sessions']} sessions, usage - cache): "
            f"mean {c['mean']:.1f} MiB, max {c['max']:.1f} MiB"
        )
        print(
            f"worker RSS {mem['worker_rss_mib']} MiB (+{mem['worker_rss_per_session_mib']} "
            f"MiB per session), API RSS {mem['api_rss_mib']} MiB"
        )
    if (trace := report.get("trace")) and "hops_ms" in trace:
        print(f"\nwhere a delta's time goes ({trace['turns']} turns; {trace['note']}):")
        for hop in trace["hops_ms"]:
            print(f"  {hop['hop']:<72} p50 {_fmt(hop, 'p50'):>6} ms   p95 {_fmt(hop, 'p95'):>6} ms")
        imports = ", ".join(f"{k} {v:.0f}" for k, v in trace["runner_imports_ms"].items())
        print(f"runner imports in a fresh container (cumulative ms): {imports}")
    elif trace:
        print(f"\ntrace: {trace.get('error')}")
    for key in ("baseline", "turns"):
        if (part := report.get(key)) and part.get("missing_deltas"):
            print(f"warning: {part['missing_deltas']} text deltas of {key} were not matched")
    print(f"\nJSON: {report['out']}")


def build_report(opts: Options, results: dict[str, Any], load_before: str) -> dict[str, Any]:
    prov = provenance()
    report: dict[str, Any] = {
        "benchmark": "agents",
        "when": datetime.now().astimezone().isoformat(timespec="seconds"),
        **prov,
        "config_id": opts.config_id,
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load_before,
            "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        },
        "options": {
            "launches": opts.launches,
            "turns": opts.turns,
            "baseline_turns": opts.baseline_turns,
            "chunks": opts.chunks,
            "chunk_delay_s": opts.chunk_delay,
            "idle_sessions": opts.idle,
            "warmup": opts.warmup,
        },
        "targets": {
            "launch_p50_s": TARGET_LAUNCH_P50_S,
            "added_stream_p50_ms": TARGET_ADDED_STREAM_P50_MS,
        },
        **results,
        "out": str(opts.out),
    }
    base = results.get("baseline", {}).get("emit_to_receipt_ms", {})
    plat = results.get("turns", {}).get("emit_to_sse_ms", {})
    if base.get("n") and plat.get("n"):
        report["added_stream_ms"] = {k: round(plat[k] - base[k], 4) for k in ("p50", "p95", "mean")}
    report["targets_met"] = verdicts(report)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run the agent benchmark; print the table and write the JSON report."""
    opts = parse_args(argv)
    run = uuid.uuid4().hex[:6]
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results: dict[str, Any] = {}
    platform_needed = bool({"launch", "turns", "memory"} - opts.skip) or opts.trace > 0
    others = wait_for_quiet(opts.wait_quiet) if platform_needed else []
    model = ModelServer("127.0.0.1", 0).start()
    try:
        if "baseline" not in opts.skip:
            print(f"SDK baseline: {opts.baseline_turns} turns on the host ...", flush=True)
            results["baseline"] = asyncio.run(run_baseline(model, opts, run))
        if platform_needed:
            tmp = Path(tempfile.mkdtemp(prefix="agc-bench-"))
            print(f"starting the platform (logs in {tmp}) ...", flush=True)
            with running_stack(tmp, model.base_url) as stack:
                results.update(asyncio.run(run_platform(stack, model, opts, run)))
            if results.get("launch", {}).get("failures") or results.get("turns", {}).get(
                "sessions_lost"
            ):
                print(f"something failed on the way: the stack's logs stay in {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        model.stop()
    report = build_report(opts, results, load_before)
    report["other_workers_at_start"] = others
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    return 1 if opts.strict and not all(report["targets_met"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
