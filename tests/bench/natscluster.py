"""What replicas and ``sync_interval`` cost and buy: publish latency and failover, measured.

``python -m tests.bench natscluster`` (or ``make bench ARGS=natscluster``) starts, for each
layout, real nats-server processes as ``agcluster up`` does (one node, or three on loopback
routes) and a stream like ``AGC_EVT``, then:

- publishes ``--messages`` 300-byte events one after another, each awaiting its ack
  (p50/p95 latency, rate): the price of ``sync_interval: always`` and of replication;
- SIGKILLs the stream's leader while a publisher keeps going and reports how long publishes
  failed (one node: until it is restarted, after ``--restart-after`` seconds as the supervisor
  would; three nodes: until a new leader is elected), then checks that every acknowledged
  message is in the stream exactly once after the node is back.

The first layout (one node, the server's default 2-minute fsync) is the baseline the others
are printed beside.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.js.api import StorageType, StreamConfig

from agcluster.instance import free_port
from agcluster.procs import Service, nats_cluster_args, start_nats
from tests.bench.stats import percentile


@dataclass(frozen=True)
class Layout:
    name: str
    nodes: int
    sync: str  # "" = the server's default (2m)


LAYOUTS = (
    Layout("1 node, R1, default fsync (2m)", 1, ""),
    Layout("1 node, R1, sync_interval: always", 1, "always"),
    Layout("3 nodes, R3, default fsync (2m)", 3, ""),
    Layout("3 nodes, R3, sync_interval: always", 3, "always"),
)


class Cluster:
    """nats-server node(s) under ``root``; a node can be killed and started again in place."""

    def __init__(self, root: Path, layout: Layout) -> None:
        self.root, self.layout = root, layout
        self.ports = [free_port() for _ in range(layout.nodes)]
        self.routes = [free_port() for _ in range(layout.nodes)] if layout.nodes > 1 else []
        self.conf: Path | None = None
        if layout.sync:
            self.conf = root / "nats.conf"
            self.conf.write_text(f"jetstream {{\n  sync_interval: {layout.sync}\n}}\n")
        self.nodes: dict[str, Service] = {}

    def name(self, i: int) -> str:
        return f"n{i + 1}"

    def start(self, i: int) -> None:
        name = self.name(i)
        if self.routes:
            extra = nats_cluster_args(name, self.routes[i], self.routes)
        else:
            extra = ["--server_name", name]
        self.nodes[name] = start_nats(
            self.root / name,
            port=self.ports[i],
            log_path=self.root / f"{name}.log",
            name=name,
            conf=self.conf,
            extra_args=extra,
        )

    @property
    def urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{p}" for p in self.ports]

    def stop(self) -> None:
        for svc in self.nodes.values():
            svc.stop()


async def _stream(js: nats.js.JetStreamContext, replicas: int) -> None:
    cfg = StreamConfig(
        name="BENCH",
        subjects=["bench.>"],
        storage=StorageType.FILE,
        num_replicas=replicas,
        duplicate_window=120.0,
    )
    deadline = time.monotonic() + 60
    while True:  # a fresh cluster answers only once it has a meta leader
        try:
            await js.add_stream(cfg)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _latency(js: nats.js.JetStreamContext, n: int) -> tuple[list[float], float]:
    body = os.urandom(150).hex().encode()
    lat: list[float] = []
    t0 = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        await js.publish("bench.lat", body, headers={"Nats-Msg-Id": f"lat-{i}"})
        lat.append((time.perf_counter() - t) * 1000)
    return lat, n / (time.perf_counter() - t0)


async def _failover(
    cluster: Cluster, js: nats.js.JetStreamContext, restart_after: float
) -> tuple[float, int, int, int]:
    """Kill the stream leader mid-publishing; return (seconds failing, acked, stored, dups)."""
    info = await js.stream_info("BENCH")
    leader = info.cluster.leader if info.cluster and info.cluster.leader else cluster.name(0)
    acked: set[str] = set()
    killed_at = 0.0
    first_ok_after = 0.0
    i = 0
    body = b"x" * 300
    while True:
        msg_id = f"fo-{i}"
        try:
            await js.publish("bench.fo", body, headers={"Nats-Msg-Id": msg_id}, timeout=0.5)
            acked.add(msg_id)
            i += 1
            if killed_at and not first_ok_after:
                first_ok_after = time.monotonic()
        except Exception:
            # Retry the same id: once acked it must be stored exactly once.
            await asyncio.sleep(0.05)
        if i == 200 and not killed_at:
            cluster.nodes[leader].proc.send_signal(signal.SIGKILL)
            cluster.nodes[leader].proc.wait()
            killed_at = time.monotonic()
        lone_down = cluster.layout.nodes == 1 and not cluster.nodes[leader].alive()
        if killed_at and lone_down and time.monotonic() - killed_at >= restart_after:
            cluster.start(0)
        if first_ok_after and i >= 400:
            break
    if cluster.layout.nodes > 1:
        cluster.start(int(leader[1:]) - 1)  # the killed node comes back and catches up
    stored = await _stored_ids(js)
    return (
        first_ok_after - killed_at,
        len(acked),
        len(set(stored) & acked),
        len(stored) - len(set(stored)),
    )


async def _stored_ids(js: nats.js.JetStreamContext) -> list[str]:
    sub = await js.subscribe("bench.fo", ordered_consumer=True)
    ids: list[str] = []
    with contextlib.suppress(nats.errors.TimeoutError):
        while True:
            msg = await sub.next_msg(timeout=2)
            ids.append((msg.headers or {}).get("Nats-Msg-Id", ""))
    await sub.unsubscribe()
    return ids


async def _quiet(_: Exception) -> None:
    return None


async def _run(layout: Layout, n: int, restart_after: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="agc-bench-nats-") as tmp:
        cluster = Cluster(Path(tmp), layout)
        try:
            for i in range(layout.nodes):
                cluster.start(i)
            nc = await nats.connect(
                cluster.urls,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.2,
                error_cb=_quiet,  # the kill is on purpose: no tracebacks in the report
            )
            js = nc.jetstream()
            await _stream(js, layout.nodes)
            lat, rate = await _latency(js, n)
            down, acked, kept, dups = await _failover(cluster, js, restart_after)
            await nc.close()
        finally:
            cluster.stop()
    return {
        "p50": percentile(lat, 50),
        "p95": percentile(lat, 95),
        "rate": rate,
        "down": down,
        "lost": acked - kept,
        "dups": dups,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.bench natscluster", description=__doc__)
    ap.add_argument("--messages", type=int, default=1000, help="publishes per layout")
    ap.add_argument(
        "--restart-after", type=float, default=1.0, help="seconds a lone killed node stays down"
    )
    args = ap.parse_args(argv)
    rows = [(lay, asyncio.run(_run(lay, args.messages, args.restart_after))) for lay in LAYOUTS]
    base = rows[0][1]
    print(
        f"{'layout':<38} {'ack p50 ms':>10} {'p95 ms':>8} {'msg/s':>7} {'x base':>7} "
        f"{'failing s':>9} {'lost':>5} {'dups':>5}"
    )
    for lay, r in rows:
        print(
            f"{lay.name:<38} {r['p50']:>10.2f} {r['p95']:>8.2f} {r['rate']:>7.0f} "
            f"{r['p50'] / base['p50']:>7.1f} {r['down']:>9.2f} {r['lost']:>5.0f} {r['dups']:>5.0f}"
        )
    print(
        "failing s: publishes failed for this long after SIGKILL of the stream leader "
        f"(one node: restarted after {args.restart_after:.1f} s; three: a new leader is elected)."
    )
    return 1 if any(r["lost"] or r["dups"] for _, r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
