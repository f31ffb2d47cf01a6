"""Sandbox benchmark: what the model gateway costs, and whether it counts exactly.

``python -m tests.bench sandbox`` (``make bench ARGS=sandbox``) prints, side by side in one run:

- streaming: the time from the scripted model writing each ``text_delta`` to an SSE client
  reading it, straight from the model server (today's path before the gateway) and through
  the sandbox's path (the runner's loopback forwarder -> unix socket -> gateway -> model);
  the gateway's added p50 should stay within 1 ms;
- launch: a locked-down container from ``docker create`` to the runner's ``session.ready``,
  the old way (host network, the model on the host's loopback, the key in ``init``) against
  the sandbox's way (``--network none``, the gateway socket mounted, agent uid separated);
- metering: the usage and cost the gateway recorded against the scripted model's own numbers
  (must be equal, exactly).

Figures also go to ``.agc/bench/sandbox-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from runner.forwarder import Forwarder
from tests.bench.stats import percentile
from tests.modelserver.script import step, text
from tests.modelserver.server import ModelServer
from workers.sandbox.egress import EgressProxy
from workers.sandbox.gateway import Gateway
from workers.sandbox.host import SandboxHost, new_sandbox_name
from workers.sandbox.pricing import ModelUsage, cost_usd
from workers.sandbox.registry import Binding, SandboxRegistry, new_token, token_hash

MODEL = "claude-sonnet-4-5-20250929"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Options:
    requests: int
    deltas: int
    delay: float
    launches: int
    image: str


def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="python -m tests.bench sandbox", description=__doc__)
    p.add_argument("--requests", type=int, default=20, help="streamed requests per path")
    p.add_argument("--deltas", type=int, default=40, help="text deltas per request")
    p.add_argument("--delay", type=float, default=0.004, help="seconds between SSE chunks")
    p.add_argument("--launches", type=int, default=3, help="container launches per path (0: skip)")
    p.add_argument("--image", default="", help="agent image (default AGC_AGENT_IMAGE or :latest)")
    a = p.parse_args(argv)
    import os

    image = a.image or os.environ.get("AGC_AGENT_IMAGE", "agcluster-agent:latest")
    return Options(a.requests, a.deltas, a.delay, a.launches, image)


def summary(values: Sequence[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
    }


async def stream_once(url: str, model: ModelServer, marker: str, pieces: list[str]) -> list[float]:
    """Stream one scripted reply; return the per-delta delay from model write to client read."""
    arrivals: dict[str, float] = {}
    body = {
        "model": MODEL,
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": f"go {marker}"}],
    }
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as c,
        c.stream("POST", "/v1/messages?beta=true", json=body) as r,
    ):
        async for line in r.aiter_lines():
            if line.startswith("data:") and '"text_delta"' in line:
                piece = json.loads(line[5:])["delta"]["text"]
                arrivals[piece] = time.monotonic()
    emitted = dict(model.emitted_log)
    return [arrivals[p] - emitted[p] for p in pieces if p in arrivals and p in emitted]


async def bench_streaming(opts: Options) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="agc-bench-", dir="/tmp"))
    recorded: list[tuple[str, ModelUsage]] = []
    model = ModelServer().start()
    registry = SandboxRegistry()
    gateway = Gateway(
        registry, upstream=model.base_url, on_usage=lambda _s, m, u: recorded.append((m, u))
    )
    host = SandboxHost(run_dir, gateway, EgressProxy(registry, on_denied=lambda _d: None))
    name = new_sandbox_name()
    path = await host.open(name)
    token = new_token()
    registry.bind(name, Binding("bench", token_hash(token), "sk-ant-bench-key"))
    fwd = Forwarder(path / "gw.sock", token, "model")
    await fwd.start()
    direct: list[float] = []
    through: list[float] = []
    expected = ModelUsage()
    try:
        for i in range(opts.requests):
            for label, url, sink in (
                ("direct", model.base_url, direct),
                ("gateway", fwd.url, through),
            ):
                pieces = [f"{label}-{i}-{k:03d} " for k in range(opts.deltas)]
                usage = {
                    "input_tokens": 1000 + i,
                    "output_tokens": 50 + i,
                    "cache_creation_input_tokens": 10 * i,
                    "cache_read_input_tokens": 7 * i,
                }
                marker = model.add_script(
                    f"bench-{label}-{i}",
                    [step(*[text(p) for p in pieces], delay=opts.delay, usage=usage)],
                )
                sink.extend(await stream_once(url, model, marker, pieces))
                if label == "gateway":
                    expected = expected.plus(ModelUsage(**usage))
    finally:
        await fwd.close()
        await host.aclose()
        await gateway.aclose()
        model.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    got = ModelUsage()
    for _, u in recorded:
        got = got.plus(u)
    d, g = summary(direct), summary(through)
    return {
        "direct": d,
        "gateway": g,
        "added_p50_ms": round(g["p50_ms"] - d["p50_ms"], 3),
        "added_p95_ms": round(g["p95_ms"] - d["p95_ms"], 3),
        "usage_expected": _as_dict(expected),
        "usage_recorded": _as_dict(got),
        "usage_equal": got == expected,
        "cost_expected_usd": cost_usd(MODEL, expected),
        "cost_recorded_usd": sum(cost_usd(m, u) for m, u in recorded),
    }


def _as_dict(u: ModelUsage) -> dict[str, int]:
    return {f: getattr(u, f) for f in u.__struct_fields__}


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    stream = asyncio.run(bench_streaming(opts))
    launch: dict[str, Any] | None = None
    if opts.launches:
        from tests.bench.sandbox_launch import bench_launch

        launch = bench_launch(opts.image, opts.launches)
    cost_equal = abs(stream["cost_expected_usd"] - stream["cost_recorded_usd"]) < 1e-12
    print(
        f"sandbox benchmark ({opts.requests} requests x {opts.deltas} deltas, {opts.delay * 1000:.1f} ms apart)"
    )
    print(f"{'':34}{'direct':>14}{'gateway':>14}{'added':>10}")
    print(
        f"{'model emit -> SSE client p50 (ms)':34}{stream['direct']['p50_ms']:>14.3f}"
        f"{stream['gateway']['p50_ms']:>14.3f}{stream['added_p50_ms']:>10.3f}"
    )
    print(
        f"{'model emit -> SSE client p95 (ms)':34}{stream['direct']['p95_ms']:>14.3f}"
        f"{stream['gateway']['p95_ms']:>14.3f}{stream['added_p95_ms']:>10.3f}"
    )
    if launch is not None:
        print(
            f"{'launch to session.ready p50 (s)':34}{launch['old']['p50_s']:>14.3f}"
            f"{launch['sandbox']['p50_s']:>14.3f}"
            f"{launch['sandbox']['p50_s'] - launch['old']['p50_s']:>10.3f}"
        )
        print(f"{'   (old: host network + key in init; sandbox: network none + gateway)':34}")
    print(
        f"usage recorded by the gateway = scripted usage: {stream['usage_equal']}  {stream['usage_recorded']}"
    )
    print(
        f"cost recorded ${stream['cost_recorded_usd']:.6f} = expected ${stream['cost_expected_usd']:.6f}: {cost_equal}"
    )
    out = REPO / ".agc" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"sandbox-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"streaming": stream, "launch": launch}, indent=2))
    print(f"figures: {path}")
    return 0 if stream["usage_equal"] and cost_equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
