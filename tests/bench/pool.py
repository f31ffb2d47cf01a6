"""Warm pool benchmark: warm and cold launches side by side, a burst, refill, slot memory.

Runs the real platform (nats-server, redis-server, the API and one worker as processes, each
session a locked-down sandbox behind the worker's model gateway) against the scripted model
server in this process, with the worker keeping a warm pool of the ``code-assistant`` preset::

    python -m tests.bench pool [--warm 10] [--cold 8] [--burst 20] [--pool 2] [--out PATH]

- warm: launches of the pooled preset, each once the pool is full again (a hit every time);
- cold: launches of the same preset's content under another id (no slot: a new container);
- burst: ``--burst`` launches of the pooled preset at once: every one must succeed, the
  misses fall back to cold launches, and the pool refills afterwards (seconds reported);
- slot memory: each ready slot's container (cgroup memory less page cache) and the worker's
  own figure from its heartbeat;
- where a cold launch's time goes (p50 of each phase), from the container's own clock marks:
  docker's created and started times and the runner's log lines (the CLI started early
  while the SDK imported, the SDK imported, the SDK client connected).

With ``--baseline-rev REV``, the same run first measures cold launches of the platform as it
was at commit ``REV`` (a worker without a pool, on an image made from this one with the
runner, broker and configs of ``REV`` and the base image's standard library as it was), for the
cold launch's before and after side by side.

Every time is measured by this process around ``POST /api/agents/launch`` (request to
``running``), beside the API's ``launch_ms`` and the worker's ``warm`` flag from the response.
Figures go to stdout and to ``$AGC_STATE_DIR/bench/pool.json`` (``.agc/`` by default).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx

from configs.store import load_presets
from tests.bench.stats import percentile
from tests.modelserver.server import ModelServer
from tests.support.stack import IMAGE, REPO, Stack, running_stack

PRESET = "code-assistant"
MIB = 1024 * 1024
TARGET_WARM_P50_MS = 100.0
TARGET_WARM_P95_MS = 250.0
TARGET_COLD_P50_MS = 1000.0


@dataclass(frozen=True, kw_only=True)
class Options:
    warm: int = 10
    cold: int = 8
    burst: int = 20
    pool: int = 2
    baseline_rev: str = ""
    out: Path = Path(os.environ.get("AGC_STATE_DIR", REPO / ".agc")) / "bench" / "pool.json"


def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="python -m tests.bench pool", description=__doc__)
    p.add_argument("--warm", type=int, default=Options.warm, help="warm launches")
    p.add_argument("--cold", type=int, default=Options.cold, help="cold launches")
    p.add_argument("--burst", type=int, default=Options.burst, help="launches at once")
    p.add_argument("--pool", type=int, default=Options.pool, help="AGC_POOL_SIZE")
    p.add_argument(
        "--baseline-rev", default="", help="also measure cold launches as of this git commit"
    )
    p.add_argument("--out", type=Path, default=Options.out, help="JSON report path")
    a = p.parse_args(argv)
    return Options(
        warm=a.warm,
        cold=a.cold,
        burst=a.burst,
        pool=a.pool,
        baseline_rev=a.baseline_rev,
        out=a.out,
    )


BASELINE_DOCKERFILE = """
FROM agcluster-base:bookworm AS base
FROM {image}
USER root
# The standard library as the base image has it (bytecode for only a few of its modules).
RUN rm -rf /usr/lib/python3.11
COPY --from=base /usr/lib/python3.11 /usr/lib/python3.11
RUN rm -rf /opt/agc/runner /opt/agc/broker /opt/agc/configs
COPY agc/ /opt/agc/
RUN /opt/venv/bin/python -m compileall -q -f --invalidation-mode unchecked-hash /opt/agc >/dev/null
USER agent
"""


def baseline_image(rev: str) -> str:
    """An image of the platform's cold path as of ``rev`` (built once, then reused)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    tag = f"agcluster-agent:before-{commit[:12]}"
    dc = docker.from_env()
    try:
        dc.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryDirectory(prefix="agc-baseline-") as ctx:
        (Path(ctx) / "agc").mkdir()
        archive = subprocess.run(
            ["git", "archive", commit, "runner", "broker", "configs"],
            cwd=REPO,
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(Path(ctx) / "agc")], input=archive, check=True)
        (Path(ctx) / "Dockerfile").write_text(BASELINE_DOCKERFILE.format(image=IMAGE))
        subprocess.run(
            ["docker", "build", "-q", "--network", "none", "-t", tag, ctx],
            check=True,
            capture_output=True,
        )
    return tag


async def run_baseline(stack: Stack, n: int) -> dict[str, Any]:
    """``n`` cold launches on the worker running now (the baseline image, no pool)."""
    dc = docker.from_env()
    got: list[Launched] = []
    phases: list[dict[str, float]] = []
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=300.0) as http:
        for _ in range(n):
            one = await launch(http, {"config": cold_config()})
            got.append(one)
            phases.append(await asyncio.to_thread(cold_phases, dc, one))
            await delete(http, dc, one)
    return {**figures([x.seconds for x in got]), **phase_figures(phases)}


def phase_figures(phases: list[dict[str, float]]) -> dict[str, Any]:
    """p50 of each phase in ms, and how many launches had its marks."""
    return {
        "phases_ms_p50": {
            name: round(percentile([p[name] * 1000 for p in phases if name in p], 50), 1)
            for name in PHASES
        },
        "phases_seen": {name: sum(name in p for p in phases) for name in PHASES},
    }


@dataclass(frozen=True)
class Launched:
    session_id: str
    api_key: str
    seconds: float
    api_ms: int
    warm: bool
    # Wall clock when the request was sent (the phases of a cold launch are measured from it).
    sent_at: float = 0.0


# The phases of a cold launch, in order (cold_phases reads them from the container).
PHASES = (
    "request -> container created",
    "created -> process started",
    "process -> CLI started (early)",
    "process -> SDK imported",
    "SDK client connect",
    "connected -> running",
)
_CONNECTED = re.compile(r"SDK client connected in ([0-9.]+)s")
_EARLY = re.compile(r"CLI started early \(pid \d+\) \(([0-9.]+) s after the process started")


def _stamp(text: str) -> float:
    """A docker timestamp (RFC 3339, nanoseconds) as epoch seconds."""
    base, _, frac = text.rstrip("Z").partition(".")
    when = dt.datetime.fromisoformat(base).replace(tzinfo=dt.UTC).timestamp()
    return when + float(f"0.{frac or '0'}"[:8])


def cold_phases(dc: docker.DockerClient, got: Launched) -> dict[str, float]:
    """Seconds of each phase of one cold launch (missing marks are left out)."""
    (c,) = dc.containers.list(all=True, filters={"label": f"agc.session={got.session_id}"})
    created, started = _stamp(c.attrs["Created"]), _stamp(c.attrs["State"]["StartedAt"])
    out = {PHASES[0]: created - got.sent_at, PHASES[1]: started - created}
    imported = connected_at = None
    for line in c.logs(timestamps=True, stdout=False, stderr=True).decode().splitlines():
        stamp, _, text = line.partition(" ")
        if (m := _EARLY.search(text)) is not None:
            out[PHASES[2]] = float(m.group(1))
        elif "runner starting" in text:
            imported = _stamp(stamp)
            out[PHASES[3]] = imported - started
        elif (m := _CONNECTED.search(text)) is not None and connected_at is None:
            connected_at = _stamp(stamp)
            out[PHASES[4]] = float(m.group(1))
    if connected_at is not None:
        out[PHASES[5]] = got.sent_at + got.seconds - connected_at
    return out


def cold_config() -> dict[str, Any]:
    """The pooled preset's content under another id: the same workload, never pooled."""
    wire = load_presets()[PRESET].to_wire()
    return {**wire, "id": "bench-cold", "name": "Bench cold launch"}


async def launch(http: httpx.AsyncClient, body: dict[str, Any]) -> Launched:
    # A key per launch, as many users would: per-key launch rates and quotas stay out of it.
    api_key = f"bench-key-{uuid.uuid4().hex}"
    sent_at = time.time()
    t0 = time.monotonic()
    r = await http.post("/api/agents/launch", json={"api_key": api_key, **body})
    took = time.monotonic() - t0
    if r.status_code != 200:
        raise RuntimeError(f"launch failed: {r.status_code} {r.text[:500]}")
    out = r.json()
    return Launched(
        out["session_id"],
        api_key,
        took,
        int(out.get("launch_ms") or 0),
        bool(out.get("warm")),
        sent_at,
    )


async def delete(http: httpx.AsyncClient, dc: docker.DockerClient, got: Launched) -> None:
    """Delete a session and wait until its container is gone (it must not skew what follows)."""
    sid = got.session_id
    auth = {"Authorization": f"Bearer {got.api_key}"}
    await http.delete(f"/api/agents/sessions/{sid}", headers=auth)
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(
            dc.containers.list, all=True, filters={"label": f"agc.session={sid}"}
        )
        if not found:
            return
        await asyncio.sleep(0.1)


async def pool_state(http: httpx.AsyncClient) -> dict[str, int]:
    r = await http.get("/health")
    return dict(r.json().get("pool") or {})


async def wait_pool(http: httpx.AsyncClient, ready: int, timeout: float = 300.0) -> float:
    """Seconds until the workers report ``ready`` warm slots in two heartbeats in a row.

    /health reads the workers' heartbeats (every 0.5 s in the bench's stack): one reading
    may predate the last claim.
    """
    t0 = time.monotonic()
    seen = 0.0
    while time.monotonic() - t0 < timeout:
        if (await pool_state(http)).get("ready", 0) >= ready:
            if seen and time.monotonic() - seen > 0.6:
                return seen - t0
            seen = seen or time.monotonic()
        else:
            seen = 0.0
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the pool did not reach {ready} ready slots in {timeout:.0f} s")


async def watch_pool(http: httpx.AsyncClient, samples: list[tuple[float, int]]) -> None:
    """Record (time, ready slots) until cancelled."""
    while True:
        samples.append((time.monotonic(), (await pool_state(http)).get("ready", 0)))
        await asyncio.sleep(0.2)


def refill_seconds(samples: list[tuple[float, int]], t0: float, full: int) -> float | None:
    """Seconds from ``t0`` to the pool being full again after it was last empty-ish."""
    low = [t for t, n in samples if t >= t0 and n < full]
    if not low:
        return None
    back = [t for t, n in samples if t > low[0] and n >= full]
    return round(back[0] - t0, 2) if back else None


def figures(xs: list[float]) -> dict[str, float]:
    ms = [x * 1000 for x in xs]
    return {
        "n": len(ms),
        "p50": round(percentile(ms, 50), 1),
        "p95": round(percentile(ms, 95), 1),
        "max": round(max(ms), 1) if ms else 0.0,
    }


def slot_memory(dc: docker.DockerClient, cluster: str) -> list[int]:
    """Memory of each ready slot's container: cgroup usage less page cache (as ``docker stats``)."""
    out = []
    for c in dc.containers.list(filters={"label": [f"agc.cluster={cluster}", "agc.pool"]}):
        s = c.stats(stream=False)
        mem = s.get("memory_stats", {})
        stats = mem.get("stats", {})
        cache = int(stats.get("cache", 0) or stats.get("inactive_file", 0))
        out.append(max(int(mem.get("usage", 0)) - cache, 0))
    return out


async def run(stack: Stack, opts: Options) -> dict[str, Any]:
    dc = docker.from_env()
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=300.0) as http:
        results["first_fill_s"] = round(await wait_pool(http, opts.pool), 2)
        mem = await asyncio.to_thread(slot_memory, dc, stack.cluster)
        state = await pool_state(http)
        results["slot_memory_mib"] = {
            "per_slot_docker": [round(m / MIB, 1) for m in mem],
            "mean_docker": round(sum(mem) / len(mem) / MIB, 1) if mem else None,
            "per_slot_worker": round(
                state.get("memory_bytes", 0) / max(state["ready"], 1) / MIB, 1
            ),
        }

        # Cold and warm launches interleaved, so both see the same machine; each once the pool
        # is full again, so neither shares the machine with a slot being made (the burst does).
        cold: list[Launched] = []
        warm: list[Launched] = []
        phases: list[dict[str, float]] = []
        for i in range(max(opts.warm, opts.cold)):
            if i < opts.cold:
                await wait_pool(http, opts.pool)
                got = await launch(http, {"config": cold_config()})
                cold.append(got)
                phases.append(await asyncio.to_thread(cold_phases, dc, got))
                await delete(http, dc, got)
            if i < opts.warm:
                await wait_pool(http, opts.pool)
                got = await launch(http, {"config_id": PRESET})
                warm.append(got)
                await delete(http, dc, got)
        results["warm"] = {
            **figures([x.seconds for x in warm]),
            "hits": sum(x.warm for x in warm),
            "api_launch_ms_p50": percentile([x.api_ms for x in warm], 50),
        }
        results["cold"] = {
            **figures([x.seconds for x in cold]),
            "hits": sum(x.warm for x in cold),
            "api_launch_ms_p50": percentile([x.api_ms for x in cold], 50),
            **phase_figures(phases),
        }

        # A burst: every launch succeeds, the pool's slots serve the first, the rest go cold.
        await wait_pool(http, opts.pool)
        samples: list[tuple[float, int]] = []
        watcher = asyncio.create_task(watch_pool(http, samples))
        t0 = time.monotonic()
        outcomes = await asyncio.gather(
            *(launch(http, {"config_id": PRESET}) for _ in range(opts.burst)),
            return_exceptions=True,
        )
        burst_s = time.monotonic() - t0
        ok = [o for o in outcomes if isinstance(o, Launched)]
        failed = [str(o)[:300] for o in outcomes if not isinstance(o, Launched)]
        results["burst"] = {
            "launches": opts.burst,
            "succeeded": len(ok),
            "failed": failed,
            "warm_hits": sum(o.warm for o in ok),
            "cold_fallbacks": sum(not o.warm for o in ok),
            "wall_s": round(burst_s, 2),
            "warm_ms": figures([o.seconds for o in ok if o.warm]),
            "cold_ms": figures([o.seconds for o in ok if not o.warm]),
        }
        await wait_pool(http, opts.pool)
        watcher.cancel()
        # The pool refills while the burst's cold launches still run: from the burst's start
        # to the pool being full again.
        results["burst"]["refill_s"] = refill_seconds(samples, t0, opts.pool)
        results["burst"]["min_ready"] = min((n for t, n in samples if t >= t0), default=None)
        for o in ok:
            await delete(http, dc, o)
    return results


def verdicts(r: dict[str, Any]) -> dict[str, bool]:
    return {
        "warm_p50": r["warm"]["p50"] <= TARGET_WARM_P50_MS,
        "warm_p95": r["warm"]["p95"] <= TARGET_WARM_P95_MS,
        "cold_p50": r["cold"]["p50"] <= TARGET_COLD_P50_MS,
        "burst_all_succeeded": r["burst"]["succeeded"] == r["burst"]["launches"],
    }


def print_report(r: dict[str, Any]) -> None:
    w, c, b, m = r["warm"], r["cold"], r["burst"], r["slot_memory_mib"]
    print()
    print(f"warm pool benchmark  (image {IMAGE}, pool {r['pool']} x {PRESET}, load {r['load']})")
    print(f"{'':28}{'n':>4}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}{'warm':>6}  target")
    print(
        f"{'warm launch (pool hit)':28}{w['n']:>4}{w['p50']:>10}{w['p95']:>10}{w['max']:>10}"
        f"{w['hits']:>6}  p50<={TARGET_WARM_P50_MS:g} p95<={TARGET_WARM_P95_MS:g}"
    )
    print(
        f"{'cold launch (no slot)':28}{c['n']:>4}{c['p50']:>10}{c['p95']:>10}{c['max']:>10}"
        f"{c['hits']:>6}  p50<={TARGET_COLD_P50_MS:g}"
    )
    base = r.get("baseline") or {}
    if base:
        label = f"cold, as of {base['rev'][:12]}"
        print(
            f"{label:28}{base['n']:>4}{base['p50']:>10}{base['p95']:>10}{base['max']:>10}"
            f"{0:>6}  (baseline: {base['image']}, no pool)"
        )
    print(
        f"burst of {b['launches']}: {b['succeeded']} succeeded ({b['warm_hits']} warm, "
        f"{b['cold_fallbacks']} cold fallbacks), {len(b['failed'])} failed, wall {b['wall_s']} s; "
        f"warm p50 {b['warm_ms']['p50']} ms, cold p50 {b['cold_ms']['p50']} ms; "
        f"pool full again {b['refill_s']} s after the burst began (lowest {b['min_ready']} ready)"
    )
    print(
        f"memory per warm slot: {m['mean_docker']} MiB (docker, per slot {m['per_slot_docker']}); "
        f"worker's figure {m['per_slot_worker']} MiB; first fill {r['first_fill_s']} s"
    )
    print(
        "where a cold launch's time goes (p50 of each phase, ms; the CLI starts during the import):"
    )
    if base:
        print(f"  {'':34}{'now':>8}{'as of ' + base['rev'][:12]:>20}")
    for name, ms in c["phases_ms_p50"].items():
        before = f"{base['phases_ms_p50'][name]:>20}" if base else ""
        print(f"  {name:34}{ms:>8}{before}   (n={c['phases_seen'][name]})")
    print(f"targets: {r['targets_met']}")
    print(f"report: {r['out']}")


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    model = ModelServer("127.0.0.1", 0).start()
    tmp = Path(tempfile.mkdtemp(prefix="agc-bench-pool-"))
    print(f"starting the platform with a warm pool of {opts.pool} (logs in {tmp}) ...", flush=True)
    baseline: dict[str, Any] = {}
    try:
        with running_stack(tmp, model.base_url, workers=0) as stack:
            if opts.baseline_rev:
                image = baseline_image(opts.baseline_rev)
                print(f"baseline: {opts.cold} cold launches on {image} ...", flush=True)
                wid = stack.start_worker(AGC_AGENT_IMAGE=image)
                stack.wait_workers(1)
                baseline = {
                    "rev": opts.baseline_rev,
                    "image": image,
                    **asyncio.run(run_baseline(stack, opts.cold)),
                }
                stack.stop_worker(wid)
            stack.start_worker(
                AGC_POOL_SIZE=str(opts.pool), AGC_POOL_CONFIGS=PRESET, AGC_POOL_PAUSE="0.2"
            )
            stack.wait_workers(1)
            results = asyncio.run(run(stack, opts))
    finally:
        model.stop()
    report = {
        "pool": opts.pool,
        "load": load,
        "image": IMAGE,
        **results,
        "baseline": baseline,
        "out": str(opts.out),
    }
    report["targets_met"] = verdicts(report)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(report, indent=2))
    print_report(report)
    if results["burst"]["failed"]:
        print(f"something failed: the stack's logs stay in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0
