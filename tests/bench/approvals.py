"""How fast an approval lets a tool run: from ``approval.requested`` to the tool starting.

Each round is one chat whose script calls ``Bash("date +%s.%N")`` N times; an ask rule
(``Bash(date:*)``) makes every call wait for a person. The "person" answers ``allow`` the moment
the request event reaches it; the tool prints the wall-clock time at which its command started.
The figure is that time minus the moment the request reached the answering client, so it covers
the whole answer path and the start of the tool (the shell's start included):

- ``runner``: the runner and the real SDK/CLI on this host, the answer written to its stdin
  (the floor: no bus, no worker, no container);
- ``platform``: the real API, NATS, worker, container and runner: the request arrives over the
  session's SSE stream, the answer is ``POST /api/agents/{sid}/approvals/{id}``, the API claims
  it in Redis and publishes it on JetStream, the owning worker writes it to the runner.

Also printed: ``->runner applied``, from the client seeing the request to the runner applying
the answer (the ``approval.resolved`` stamp), which splits the figure into the answer's trip and
the tool's own start; and ``event->client``, how long the request event took to reach the
client after the runner stamped it (``ts``). Target: platform p50 <= 20 ms.

Run: ``make bench ARGS=approvals`` (``-h`` for options; ``AGC_AGENT_IMAGE`` picks the image).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from broker.runner_wire import ApprovalAnswer, ApproveIn
from tests.bench.agents import aiter_sse
from tests.bench.stats import percentile
from tests.modelserver.script import StepSpec, text, tool_use
from tests.modelserver.server import ModelServer
from tests.runner.harness import RunnerProcess, base_config
from tests.support.stack import IMAGE, running_stack

TARGET_P50_MS = 20.0
COMMAND = "date +%s.%N"
PERMISSIONS = {"ask": ["Bash(date:*)"]}


@dataclass(frozen=True, kw_only=True)
class Options:
    rounds: int = 3
    calls: int = 10
    skip: frozenset[str] = frozenset()


def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="python -m tests.bench approvals", description=__doc__)
    p.add_argument("--rounds", type=int, default=3, help="timed chats per setup (default 3)")
    p.add_argument("--calls", type=int, default=10, help="approvals per chat (default 10)")
    p.add_argument("--skip", action="append", choices=("runner", "platform"), default=[])
    a = p.parse_args(argv)
    return Options(rounds=a.rounds, calls=a.calls, skip=frozenset(a.skip))


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


def summary(label: str, values: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in values]
    out = {
        "setup": label,
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "max_ms": round(max(ms), 2) if ms else None,
    }
    print(
        f"  {label:<22} n={out['n']:<4} p50 {out['p50_ms']:>7.2f} ms   "
        f"p95 {out['p95_ms']:>7.2f} ms   max {out['max_ms']} ms",
        flush=True,
    )
    return out


# ------------------------------------------------------------------------------ runner only
async def bench_runner(model: ModelServer, opts: Options) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="agc-bench-appr-"))
    (tmp / "home").mkdir()
    (tmp / "ws").mkdir()
    runner = await RunnerProcess(home=tmp / "home", workspace=tmp / "ws").start()
    latency: list[float] = []
    delivery: list[float] = []
    applied: list[float] = []
    try:
        await runner.ready(model.base_url, base_config(permissions=PERMISSIONS))
        for n in range(opts.rounds + 1):  # the first round warms up
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
                if n:
                    delivery.append(now - req.data["ts"])
            events = await runner.turn(turn_id, timeout=120)
            if n:
                for e in events:
                    if e.data.get("tool_use_id") not in seen:
                        continue
                    if e.type == "tool.completed":
                        latency.append(started_at(e.data["output"]) - seen[e.data["tool_use_id"]])
                    elif e.type == "approval.resolved":
                        applied.append(e.data["ts"] - seen[e.data["tool_use_id"]])
    finally:
        await runner.close()
    return [
        summary("runner: ->tool start", latency),
        summary("runner: ->runner applied", applied),
        summary("runner: event->client", delivery),
    ]


# ------------------------------------------------------------------------------ the platform
async def bench_platform(model: ModelServer, opts: Options) -> list[dict[str, Any]]:
    key = f"bench-{uuid.uuid4().hex}"
    config = {
        "id": "bench-approvals",
        "name": "bench approvals",
        "allowed_tools": ["Bash"],
        "permissions": PERMISSIONS,
    }
    latency: list[float] = []
    delivery: list[float] = []
    applied: list[float] = []
    with running_stack(Path(tempfile.mkdtemp(prefix="agc-bench-appr-")), model.base_url) as s:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=s.base_url, headers=headers, timeout=120) as http:
            r = await http.post("/api/agents/launch", json={"api_key": key, "config": config})
            r.raise_for_status()
            sid = r.json()["session_id"]
            async with http.stream(
                "GET", f"/api/agents/{sid}/events", headers={"Accept": "text/event-stream"}
            ) as stream:
                events = aiter_sse(stream)
                for n in range(opts.rounds + 1):
                    marker = script(model, opts.calls)
                    chat = asyncio.create_task(
                        http.post(f"/api/agents/{sid}/chat", json={"message": f"time {marker}"})
                    )
                    seen: dict[str, float] = {}
                    async for ev in events:
                        if ev.event == "approval.requested":
                            now = time.time()
                            seen[ev.data["tool_use_id"]] = now
                            if n:
                                delivery.append(now - ev.data["ts"])
                            # The answer is applied before this returns (200), or it failed.
                            answered = await http.post(
                                f"/api/agents/{sid}/approvals/{ev.data['request_id']}",
                                json={"decision": "allow"},
                            )
                            if answered.status_code != 200:
                                raise RuntimeError(f"answer failed: {answered.text}")
                        elif ev.event == "approval.resolved" and n:
                            if ev.data["tool_use_id"] in seen:
                                applied.append(ev.data["ts"] - seen[ev.data["tool_use_id"]])
                        elif ev.event == "tool.completed" and n:
                            if ev.data["tool_use_id"] in seen:
                                took = started_at(ev.data["output"]) - seen[ev.data["tool_use_id"]]
                                latency.append(took)
                        elif ev.event == "turn.completed":
                            break
                    (await chat).raise_for_status()
            await http.delete(f"/api/agents/sessions/{sid}")
    return [
        summary("platform: ->tool start", latency),
        summary("platform: ->runner applied", applied),
        summary("platform: event->client", delivery),
    ]


async def run(opts: Options) -> int:
    model = ModelServer().start()
    rows: list[dict[str, Any]] = []
    try:
        print(
            f"approvals: {opts.rounds} chats x {opts.calls} approvals per setup "
            f"(+1 warm-up chat); image {IMAGE}",
            flush=True,
        )
        if "runner" not in opts.skip:
            rows += await bench_runner(model, opts)
        if "platform" not in opts.skip:
            rows += await bench_platform(model, opts)
    finally:
        model.stop()
    platform = next((r for r in rows if r["setup"] == "platform: ->tool start"), None)
    if platform is not None:
        ok = platform["p50_ms"] <= TARGET_P50_MS
        print(
            f"target: platform p50 <= {TARGET_P50_MS:.0f} ms: "
            f"{'met' if ok else 'MISSED'} ({platform['p50_ms']} ms)",
            flush=True,
        )
    print(json.dumps({"benchmark": "approvals", "rows": rows}), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
