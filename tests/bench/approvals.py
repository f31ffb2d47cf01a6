"""How fast an approval lets a tool run: from ``approval.requested`` to the tool starting.

Each round is one chat whose script calls ``Bash("date +%s.%N")`` N times; an ask rule
(``Bash(date:*)``) makes every call wait for a person. The "person" answers ``allow`` the moment
the request event reaches it; the tool prints the wall-clock time at which its command started.
The figure is that time minus the moment the request reached the answering client, so it covers
the whole answer path and the start of the tool (the shell's start included). Setups:

- ``runner``: the runner and the real SDK/CLI on this host, the answer written to its stdin
  (the floor: no API, bus, worker or container);
- ``api``: the real API, NATS, worker, container and runner: the request arrives over the
  session's SSE stream, the answer is ``POST /api/agents/{sid}/approvals/{id}``; the API checks
  the key, claims the answer in Redis and sends it to the owning worker as a core NATS request,
  which the worker writes to the runner (the path every answer takes while the session's worker
  is up). This is the figure the target is about;
- ``direct`` and ``queued`` compare the two ways an answer reaches the worker, on the same
  stack, with the bench doing the API's part itself (claim in Redis, then send; no HTTP request,
  no key check): ``direct`` is the core NATS request of ``api``; ``queued``, the baseline, is
  an ``approve`` command published on JetStream for the worker's pull consumer: the path every
  answer took before, and still the fallback when no worker answers the direct request.

Each setup runs quiet (nothing added to what else runs on the machine) and then under load:
``--load`` processes (default: one per CPU) spin on the CPU meanwhile, as the other work on a
shared machine does. The platform's setups take turns chat by chat, so a noisy moment falls on
all of them alike. Also printed: ``applied``, from
the client seeing the request to the runner applying the answer (the ``approval.resolved``
stamp), which splits the figure into the answer's trip and the tool's own start; and
``event->client``, how long the request event took to reach the client after the runner stamped
it (``ts``). Target: ``api`` p50 <= 20 ms, under load.

Run: ``make bench ARGS=approvals`` (``-h`` for options; ``AGC_AGENT_IMAGE`` picks the image).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
from redis.asyncio import Redis

from broker import subjects
from broker.approvals import ApprovalStore, Claim
from broker.commands import Approve, encode_command
from broker.runner_wire import ApprovalAnswer, ApproveIn
from tests.bench.stats import percentile
from tests.modelserver.script import StepSpec, text, tool_use
from tests.modelserver.server import ModelServer
from tests.runner.harness import RunnerProcess, base_config
from tests.support.sse import aiter_sse
from tests.support.stack import IMAGE, Stack, running_stack

TARGET_P50_MS = 20.0
COMMAND = "date +%s.%N"
PERMISSIONS = {"ask": ["Bash(date:*)"]}
SETUPS = ("runner", "api", "direct", "queued")
PLATFORM = SETUPS[1:]


@dataclass(frozen=True, kw_only=True)
class Options:
    rounds: int = 5
    calls: int = 10
    load: int = field(default_factory=lambda: os.cpu_count() or 2)
    skip: frozenset[str] = frozenset()


def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="python -m tests.bench approvals", description=__doc__)
    p.add_argument("--rounds", type=int, default=5, help="timed chats per setup (default 5)")
    p.add_argument("--calls", type=int, default=10, help="approvals per chat (default 10)")
    p.add_argument(
        "--load",
        type=int,
        default=os.cpu_count() or 2,
        help="CPU-spinning processes for the loaded runs (default: one per CPU; 0: none)",
    )
    p.add_argument("--skip", action="append", choices=SETUPS, default=[])
    a = p.parse_args(argv)
    return Options(rounds=a.rounds, calls=a.calls, load=a.load, skip=frozenset(a.skip))


@contextlib.contextmanager
def cpu_load(n: int) -> Iterator[None]:
    """``n`` processes spinning on the CPU for the duration (the load of a shared machine)."""
    procs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range(n)
    ]
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def script(model: ModelServer, calls: int) -> str:
    steps: list[StepSpec] = [
        [tool_use("Bash", {"command": COMMAND, "description": "time"})] for _ in range(calls)
    ]
    return model.add_script(f"bench-appr-{uuid.uuid4().hex[:8]}", [*steps, [text("done")]])


def started_at(output: str) -> float:
    try:
        return float(output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"the timed command did not run: {output[:300]!r}") from None


@dataclass
class Samples:
    """One setup's measurements, in seconds."""

    tool_start: list[float] = field(default_factory=list)
    applied: list[float] = field(default_factory=list)
    delivery: list[float] = field(default_factory=list)


def _ms(values: list[float], q: float) -> float:
    return round(percentile([v * 1000 for v in values], q), 2)


def summary(label: str, s: Samples) -> dict[str, Any]:
    out = {
        "setup": label,
        "n": len(s.tool_start),
        "p50_ms": _ms(s.tool_start, 50),
        "p95_ms": _ms(s.tool_start, 95),
        "applied_p50_ms": _ms(s.applied, 50),
        "applied_p95_ms": _ms(s.applied, 95),
        "event_to_client_p50_ms": _ms(s.delivery, 50),
    }
    print(
        f"  {label:<16} n={out['n']:<4} ->tool start p50 {out['p50_ms']:>6.2f} ms  "
        f"p95 {out['p95_ms']:>6.2f} ms   ->applied p50 {out['applied_p50_ms']:>6.2f} ms  "
        f"p95 {out['applied_p95_ms']:>6.2f} ms   event->client p50 "
        f"{out['event_to_client_p50_ms']:>5.2f} ms",
        flush=True,
    )
    return out


# ------------------------------------------------------------------------------ runner only
async def bench_runner(model: ModelServer, opts: Options) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="agc-bench-appr-"))
    (tmp / "home").mkdir()
    (tmp / "ws").mkdir()
    runner = await RunnerProcess(home=tmp / "home", workspace=tmp / "ws").start()
    rows = []
    try:
        await runner.ready(model.base_url, base_config(permissions=PERMISSIONS))
        await runner_rounds(runner, model, opts, 1, Samples())  # warm-up
        for loaded in (False, True):
            samples = Samples()
            with cpu_load(opts.load if loaded else 0):
                await runner_rounds(runner, model, opts, opts.rounds, samples)
            rows.append(summary(f"runner{', load' if loaded else ''}", samples))
    finally:
        await runner.close()
    return rows


async def runner_rounds(
    runner: RunnerProcess, model: ModelServer, opts: Options, rounds: int, out: Samples
) -> None:
    for _ in range(rounds):
        turn_id = runner.chat(f"time it {script(model, opts.calls)}")
        seen: dict[str, float] = {}
        for _ in range(opts.calls):
            req = await runner.wait_for("approval.requested")
            now = time.time()
            runner.send(
                ApproveIn(
                    answer=ApprovalAnswer(request_id=req.data["request_id"], decision="allow")
                )
            )
            seen[req.data["tool_use_id"]] = now
            out.delivery.append(now - req.data["ts"])
        for e in await runner.turn(turn_id, timeout=120):
            if e.data.get("tool_use_id") not in seen:
                continue
            if e.type == "tool.completed":
                out.tool_start.append(started_at(e.data["output"]) - seen[e.data["tool_use_id"]])
            elif e.type == "approval.resolved":
                out.applied.append(e.data["ts"] - seen[e.data["tool_use_id"]])


# ------------------------------------------------------------------------------ the platform
Answer = Callable[[str, str], Awaitable[None]]


async def bench_platform(model: ModelServer, opts: Options) -> list[dict[str, Any]]:
    key = f"bench-{uuid.uuid4().hex}"
    config = {
        "id": "bench-approvals",
        "name": "bench approvals",
        "allowed_tools": ["Bash"],
        "permissions": PERMISSIONS,
    }
    rows = []
    with running_stack(Path(tempfile.mkdtemp(prefix="agc-bench-appr-")), model.base_url) as s:
        headers = {"Authorization": f"Bearer {key}"}
        async with (
            httpx.AsyncClient(base_url=s.base_url, headers=headers, timeout=120) as http,
            answer_paths(s) as bench_paths,
        ):
            r = await http.post("/api/agents/launch", json={"api_key": key, "config": config})
            r.raise_for_status()
            sid = r.json()["session_id"]

            async def api(sid: str, request_id: str) -> None:
                # The answer is applied before this returns (200), or it failed.
                answered = await http.post(
                    f"/api/agents/{sid}/approvals/{request_id}", json={"decision": "allow"}
                )
                if answered.status_code != 200:
                    raise RuntimeError(f"answer failed: {answered.text}")

            paths: dict[str, Answer] = {"api": api, **bench_paths}
            chosen = [name for name in PLATFORM if name not in opts.skip]
            async with http.stream(
                "GET", f"/api/agents/{sid}/events", headers={"Accept": "text/event-stream"}
            ) as stream:
                events = aiter_sse(stream)
                for name in chosen:  # warm-up: one chat per path
                    await platform_rounds(http, events, sid, paths[name], model, opts, 1, Samples())
                for loaded in (False, True):
                    samples = {name: Samples() for name in chosen}
                    with cpu_load(opts.load if loaded else 0):
                        # Chat by chat in turn, so a noisy moment on a shared machine falls on
                        # every path alike rather than on whichever ran then.
                        for _ in range(opts.rounds):
                            for name in chosen:
                                await platform_rounds(
                                    http, events, sid, paths[name], model, opts, 1, samples[name]
                                )
                    for name in chosen:
                        rows.append(summary(f"{name}{', load' if loaded else ''}", samples[name]))
            await http.delete(f"/api/agents/sessions/{sid}")
    return rows


@contextlib.asynccontextmanager
async def answer_paths(s: Stack) -> AsyncIterator[dict[str, Answer]]:
    """The API's part of an answer done by the bench: claim in Redis, then send it directly
    (core NATS request to the owning worker) or queued (JetStream command)."""
    assert s.nats is not None and s.redis is not None
    nc = await nats.connect(s.nats.url)
    redis = Redis.from_url(s.redis.url)
    store = ApprovalStore(redis, prefix="agc")
    js = nc.jetstream()

    async def claimed(sid: str, request_id: str) -> bytes:
        answer_id = f"ans-{uuid.uuid4().hex[:16]}"
        claim, tool = await store.claim(sid, request_id, f"{answer_id} bench")
        if claim is not Claim.OK:
            raise RuntimeError(f"cannot claim {request_id}: {claim}")
        answer = ApprovalAnswer(
            request_id=request_id, decision="allow", by="bench", answer_id=answer_id
        )
        return encode_command(Approve(session_id=sid, answer=answer, tool=tool))

    async def direct(sid: str, request_id: str) -> None:
        reply = await nc.request(
            subjects.session_rpc(sid, "approve"), await claimed(sid, request_id), timeout=10
        )
        if b'"ok":true' not in reply.data:
            raise RuntimeError(f"the worker did not relay the answer: {reply.data!r}")

    async def queued(sid: str, request_id: str) -> None:
        await js.publish(
            subjects.session_cmd(sid, "approve"),
            await claimed(sid, request_id),
            headers={"Nats-Msg-Id": f"{sid}:approve:{request_id}"},
        )

    try:
        yield {"direct": direct, "queued": queued}
    finally:
        await redis.aclose()
        await nc.close()


async def platform_rounds(
    http: httpx.AsyncClient,
    events: Any,
    sid: str,
    answer: Answer,
    model: ModelServer,
    opts: Options,
    rounds: int,
    out: Samples,
) -> None:
    for _ in range(rounds):
        marker = script(model, opts.calls)
        chat = asyncio.create_task(
            http.post(f"/api/agents/{sid}/chat", json={"message": f"time {marker}"})
        )
        seen: dict[str, float] = {}
        async for ev in events:
            if ev.event == "approval.requested":
                now = time.time()
                seen[ev.data["tool_use_id"]] = now
                out.delivery.append(now - ev.data["ts"])
                await answer(sid, ev.data["request_id"])
            elif ev.event == "approval.resolved" and ev.data["tool_use_id"] in seen:
                out.applied.append(ev.data["ts"] - seen[ev.data["tool_use_id"]])
            elif ev.event == "tool.completed" and ev.data["tool_use_id"] in seen:
                took = started_at(ev.data["output"]) - seen[ev.data["tool_use_id"]]
                out.tool_start.append(took)
            elif ev.event == "turn.completed":
                break
        (await chat).raise_for_status()


async def run(opts: Options) -> int:
    model = ModelServer().start()
    rows: list[dict[str, Any]] = []
    try:
        print(
            f"approvals: {opts.rounds} chats x {opts.calls} approvals per setup (+1 warm-up "
            f"chat), quiet and beside {opts.load} CPU-spinning processes; image {IMAGE}",
            flush=True,
        )
        if "runner" not in opts.skip:
            rows += await bench_runner(model, opts)
        if not set(PLATFORM) <= opts.skip:
            rows += await bench_platform(model, opts)
    finally:
        model.stop()
    by = {r["setup"]: r for r in rows}
    for suffix in ("", ", load"):
        new, old = by.get(f"direct{suffix}"), by.get(f"queued{suffix}")
        if new and old:
            print(
                f"direct vs queued (baseline){suffix or ', quiet'}: ->tool start p50 "
                f"{new['p50_ms']} vs {old['p50_ms']} ms, p95 {new['p95_ms']} vs "
                f"{old['p95_ms']} ms; ->applied p50 {new['applied_p50_ms']} vs "
                f"{old['applied_p50_ms']} ms, p95 {new['applied_p95_ms']} vs "
                f"{old['applied_p95_ms']} ms",
                flush=True,
            )
    for setup in ("api", "api, load"):
        if setup in by:
            ok = by[setup]["p50_ms"] <= TARGET_P50_MS
            print(
                f"target: {setup} p50 <= {TARGET_P50_MS:.0f} ms: "
                f"{'met' if ok else 'MISSED'} ({by[setup]['p50_ms']} ms)",
                flush=True,
            )
    print(json.dumps({"benchmark": "approvals", "rows": rows}), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
