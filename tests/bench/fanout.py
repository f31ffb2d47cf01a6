"""Fan-out benchmark: N SSE clients follow one session's ``/events`` while a turn is published.

    python -m tests.bench fanout [--clients 50,200,1000] [--procs 2] [--deltas 40]
                                 [--baseline-ref REF | --no-baseline] [--out PATH]

For each N, against the API of this tree (one consumer per followed session, ``api/agents/
hub.py``) and beside it the API of ``--baseline-ref`` (default: the last commit before the hub,
one JetStream consumer per SSE client), each a fresh ``agcluster api`` process on real
nats-server and redis-server:

1. a session with one finished turn in its history (no container: its record in Redis, its
   events published as a worker publishes them, tests/support/scripted_session.py);
2. N clients (spread over ``--procs`` client processes, raw asyncio sockets and the project's
   SSE parser, so the clients stay cheap) follow ``/events`` from the start;
3. once all are connected (or after ``--connect-timeout``), one turn is published;
4. each client stops at that turn's ``turn.completed``.

Reported per run: connected clients and the time until the last one was (from the moment the
clients start connecting), clients that saw ``turn.completed``, the spread between the first and
the last of them and the latency from its publish (p50/p95), events lost and duplicated against
the stream (every client must see every stored event once), streams that ended without an
``error`` event, HTTP errors, and the API's RSS (before the clients, peak, after they left).
Times are wall-clock (``time.time()``), shared by all processes on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import nats
import uvloop

from agcluster.procs import Service, start_nats, start_redis
from broker.events import TurnCompleted
from broker.streams import ensure_streams
from tests.bench.stats import percentile, tree_rss
from tests.support.api_server import free_port
from tests.support.scripted_session import create_session, publish, stored_seqs, turn
from tests.support.sse import LineSplitter, SseDecoder

REPO = Path(__file__).resolve().parents[2]
# The last commit whose API gave every SSE client its own JetStream consumer.
BASELINE_REF = "3e77a50"
MIB = 1024 * 1024
TURN_ID = "turn-bench"
# The frame of the benchmark turn's turn.completed (compact JSON: turn_id comes early; the
# baseline's frames end their lines with CRLF).
END_OF_TURN = re.compile(rb'event: turn\.completed\r?\ndata: [^\r\n]*"turn_id":"turn-bench"')


# ------------------------------------------------------------------- client processes
@dataclass
class _Client:
    """One SSE client on a raw socket: HTTP/1.1 response, chunked body, SSE events."""

    body: list[bytes] = field(default_factory=list)
    connected_at: float = 0.0
    completed_at: float = 0.0
    status: int = 0
    error: str = ""
    ended: bool = False


class _SseProtocol(asyncio.Protocol):
    def __init__(
        self,
        request: bytes,
        client: _Client,
        connected: asyncio.Future[None],
        done: asyncio.Future[None],
    ) -> None:
        self.request = request
        self.c = client
        self.connected = connected
        self.done = done
        self.head = b""
        self.headers_done = False
        self.chunk_left = -1  # -1: reading a chunk-size line
        self.pending = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports write like asyncio.Transport but are no subclass of it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.headers_done:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self.head[:end], self.head[end + 4 :]
            self.headers_done = True
            self.c.status = int(head.split(b" ", 2)[1])
            self.c.connected_at = time.time()
            self.connected.set_result(None)
            if self.c.status != 200:
                self.c.error = f"HTTP {self.c.status}: {data[:300].decode(errors='replace')}"
                self._finish()
                return
        self._events(self._dechunk(data))

    def _dechunk(self, data: bytes) -> bytes:
        """The body bytes in ``data`` (HTTP/1.1 chunked transfer coding)."""
        buf, out = self.pending + data, []
        while True:
            if self.chunk_left == -1:  # a chunk-size line
                nl = buf.find(b"\r\n")
                if nl < 0:
                    break
                size = int(buf[:nl].split(b";")[0], 16)
                buf = buf[nl + 2 :]
                if size == 0:
                    self.c.ended = True
                    break
                self.chunk_left = size
            elif self.chunk_left > 0:  # chunk data
                if not buf:
                    break
                piece = buf[: self.chunk_left]
                out.append(piece)
                self.chunk_left -= len(piece)
                buf = buf[len(piece) :]
                if self.chunk_left == 0:
                    self.chunk_left = -2
            else:  # the CRLF after a chunk's data
                if len(buf) < 2:
                    break
                buf = buf[2:]
                self.chunk_left = -1
        self.pending = buf
        return b"".join(out)

    def _events(self, body: bytes) -> None:
        # On the clock only a byte search for the end; events are parsed after the run.
        if body:
            window = self.c.body[-1][-512:] + body if self.c.body else body
            self.c.body.append(body)
            if END_OF_TURN.search(window):
                self.c.completed_at = time.time()
                self._finish()
                return
        if self.c.ended:
            self._finish()

    def _finish(self) -> None:
        if self.transport is not None:
            self.transport.close()
        for fut in (self.connected, self.done):
            if not fut.done():
                fut.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.c.ended = True
        self._finish()


def _parse(body: bytes) -> tuple[list[int], str]:
    """The ids of the events in a body, and the code of its error event if it had one."""
    dec, lines = SseDecoder(), LineSplitter()
    ids, error = [], ""
    for line in lines.feed(body.decode() + "\n"):
        ev = dec.line(line)
        if ev is None:
            continue
        if ev.event == "error":
            error = str(ev.data.get("code"))
        elif ev.id is not None:
            ids.append(ev.id)
    return ids, error


async def _run_clients(args: argparse.Namespace) -> None:
    """A client process: wait for "go" on stdin, connect, report one JSON document."""
    host, port = args.host, args.port
    request = (
        f"GET /api/agents/{args.sid}/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {args.key}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await loop.run_in_executor(None, sys.stdin.readline)
    clients = [_Client() for _ in range(args.n)]
    connects: list[asyncio.Future[None]] = []
    dones: list[asyncio.Future[None]] = []

    async def one(c: _Client) -> None:
        connected: asyncio.Future[None] = loop.create_future()
        done: asyncio.Future[None] = loop.create_future()
        connects.append(connected)
        dones.append(done)
        try:
            await loop.create_connection(
                lambda: _SseProtocol(request, c, connected, done), host, port
            )
        except OSError as exc:
            c.error = f"connect: {exc}"
            connected.set_result(None)
            done.set_result(None)

    await asyncio.gather(*(one(c) for c in clients))
    # Tell the harness once every client has its response headers (or gave up).
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(args.connect_timeout):
            await asyncio.gather(*connects)
    sys.stdout.write("connected\n")
    sys.stdout.flush()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(args.turn_timeout):
            await asyncio.gather(*dones)
    out = []
    for c in clients:
        ids, error = _parse(b"".join(c.body))
        out.append(
            {
                "ids": ids,
                "connected_at": c.connected_at,
                "completed_at": c.completed_at,
                "status": c.status,
                "error": c.error or error,
                "ended": c.ended,
            }
        )
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------------ the harness
@dataclass
class RunResult:
    mode: str
    clients: int
    connected: int = 0
    connect_s: float = float("nan")
    completed: int = 0
    spread_ms: float = float("nan")
    latency_p50_ms: float = float("nan")
    latency_p95_ms: float = float("nan")
    lost: int = 0
    duplicated: int = 0
    silent_ends: int = 0
    no_answer: int = 0
    http_errors: int = 0
    error_events: int = 0
    api_cpu_s: float = float("nan")
    rss_idle_mib: float = float("nan")
    rss_peak_mib: float = float("nan")
    rss_after_mib: float = float("nan")


class _RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.05):
            rss = tree_rss(self.pid)
            if rss is None:
                return
            self.peak = max(self.peak, rss)

    def stop(self) -> int:
        self._halt.set()
        self.join()
        return self.peak


def _start_api(
    tree: Path, nats_url: str, redis_url: str, secret: str, tmp: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGC_")}
    env.update(
        AGC_NATS_URL=nats_url,
        AGC_REDIS_URL=redis_url,
        AGC_SECRET_KEY=secret,
        AGC_HOST="127.0.0.1",
        AGC_PORT=str(port),
        AGC_CONFIG_DIR=str(tmp / "configs"),
        AGC_STATE_DIR=str(tmp),
        AGC_WEB_DIR=str(tmp / "no-web"),
        AGC_LOG_LEVEL="WARNING",
        # All viewers of one session hold its key: lift the per-key stream quota (issue 11).
        AGC_MAX_STREAMS_PER_KEY="100000",
    )
    log = (tmp / f"api-{port}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agcluster.cli", "api"],
        cwd=tree,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"API exited: {(tmp / f'api-{port}.log').read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{base}/health", timeout=1.0)
            return proc, base
        time.sleep(0.1)
    raise RuntimeError("API did not answer within 60 s")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def _one_run(
    mode: str,
    tree: Path,
    n: int,
    opts: argparse.Namespace,
    nats_svc: Service,
    redis_svc: Service,
    secret: str,
    tmp: Path,
) -> RunResult:
    res = RunResult(mode, n)
    nc = await nats.connect(nats_svc.url)
    js = nc.jetstream()
    await ensure_streams(js)
    sess = await create_session(redis_svc.url, secret)
    sid = sess.session_id
    await publish(js, turn(sid, "turn-history", deltas=opts.deltas))
    api, base = _start_api(tree, nats_svc.url, redis_svc.url, secret, tmp)
    host, port = base.removeprefix("http://").split(":")
    try:
        await asyncio.sleep(0.5)  # let the API settle before its idle figure
        res.rss_idle_mib = (tree_rss(api.pid) or 0) / MIB
        sampler = _RssSampler(api.pid)
        sampler.start()
        per = [n // opts.procs + (1 if i < n % opts.procs else 0) for i in range(opts.procs)]
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.bench.fanout",
                    "--client-process",
                    f"--host={host}",
                    f"--port={port}",
                    f"--sid={sid}",
                    f"--key={sess.api_key}",
                    f"--n={k}",
                    f"--connect-timeout={opts.connect_timeout}",
                    f"--turn-timeout={opts.turn_timeout}",
                ],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for k in per
            if k
        ]
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
        t0 = time.time()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        loop = asyncio.get_running_loop()
        for p in procs:
            assert p.stdout is not None
            line = await loop.run_in_executor(None, p.stdout.readline)
            assert line.strip() == "connected", line
        cpu0 = _cpu_seconds(api.pid)
        completed_pub = 0.0
        for ev in turn(sid, TURN_ID, deltas=opts.deltas):
            if isinstance(ev, TurnCompleted):
                completed_pub = time.time()
            await publish(js, [ev])
        results: list[dict[str, Any]] = []
        for p in procs:
            out, _ = p.communicate(timeout=opts.connect_timeout + opts.turn_timeout + 60)
            results.extend(json.loads(out.strip().splitlines()[-1]))
        refusals = sorted({r["error"] for r in results if r["status"] not in (0, 200)})
        for why in refusals[:3]:
            print(f"   refused: {why}", flush=True)
        res.api_cpu_s = _cpu_seconds(api.pid) - cpu0
        peak = sampler.stop()
        truth = await stored_seqs(js, sid)
        _score(res, results, truth, t0, completed_pub)
        res.rss_peak_mib = peak / MIB
        await asyncio.sleep(0.5)
        res.rss_after_mib = (tree_rss(api.pid) or 0) / MIB
    finally:
        _stop(api)
        await nc.close()
    return res


def _score(
    res: RunResult, results: list[dict[str, Any]], truth: list[int], t0: float, pub: float
) -> None:
    connected = [r for r in results if r["status"] == 200]
    res.connected = len(connected)
    res.no_answer = sum(1 for r in results if r["status"] == 0)
    res.http_errors = sum(1 for r in results if r["status"] not in (0, 200))
    if connected:
        res.connect_s = max(r["connected_at"] for r in connected) - t0
    done = [r for r in connected if r["completed_at"]]
    res.completed = len(done)
    if done:
        times = [r["completed_at"] for r in done]
        res.spread_ms = (max(times) - min(times)) * 1000
        lat = [(t - pub) * 1000 for t in times]
        res.latency_p50_ms = percentile(lat, 50)
        res.latency_p95_ms = percentile(lat, 95)
    for r in connected:
        got = r["ids"]
        upto = got[-1] if r["completed_at"] and got else (truth[-1] if truth else 0)
        expected = [s for s in truth if s <= upto]
        res.lost += len(set(expected) - set(got))
        res.duplicated += len(got) - len(set(got))
        if r["error"]:
            res.error_events += 1
        elif not r["completed_at"]:
            res.silent_ends += 1


def _table(rows: list[RunResult]) -> str:
    head = (
        f"{'api':<9} {'clients':>7} {'connected':>9} {'all in (s)':>10} {'saw end':>8} "
        f"{'spread ms':>9} {'p50 ms':>7} {'p95 ms':>7} {'lost':>5} {'dup':>4} "
        f"{'silent':>6} {'no-answer':>9} {'503':>4} {'err-ev':>6} {'API cpu s':>9} "
        f"{'RSS MiB idle/peak/after':>24}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.mode:<9} {r.clients:>7} {r.connected:>9} {r.connect_s:>10.2f} "
            f"{r.completed:>8} {r.spread_ms:>9.1f} {r.latency_p50_ms:>7.1f} "
            f"{r.latency_p95_ms:>7.1f} {r.lost:>5} {r.duplicated:>4} {r.silent_ends:>6} "
            f"{r.no_answer:>9} {r.http_errors:>4} {r.error_events:>6} {r.api_cpu_s:>9.2f} "
            f"{r.rss_idle_mib:>14.0f}/{r.rss_peak_mib:.0f}/{r.rss_after_mib:.0f}"
        )
    return "\n".join(lines)


def _baseline_tree(ref: str, tmp: Path) -> Path:
    """The API of ``ref`` extracted from git (read-only: ``git archive``)."""
    out = tmp / f"baseline-{ref}"
    out.mkdir()
    archive = subprocess.run(
        ["git", "archive", ref, "agcluster", "api", "broker", "configs", "workers", "runner"],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    # Give the baseline the Redis pool this tree has (broker/connect.py), so that only the
    # fan-out differs: redis-py's default pool answers 503 past 100 concurrent requests.
    services = out / "api" / "services.py"
    text = services.read_text()
    old = "Redis.from_url(settings.redis_url)"
    if old in text:
        services.write_text(
            text.replace(
                old,
                "Redis.from_pool(__import__('redis.asyncio').asyncio.BlockingConnectionPool"
                ".from_url(settings.redis_url, max_connections=100, timeout=10))",
            )
        )
    return out


async def _bench(opts: argparse.Namespace) -> list[RunResult]:
    rows: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="agc-bench-fanout-") as tmpdir:
        tmp = Path(tmpdir)
        trees = [("hub", REPO)]
        if opts.baseline_ref:
            trees.insert(0, ("baseline", _baseline_tree(opts.baseline_ref, tmp)))
        secret = secrets.token_urlsafe(24)
        for n in opts.clients:
            for mode, tree in trees:
                run_dir = tmp / f"{mode}-{n}-{uuid.uuid4().hex[:6]}"
                run_dir.mkdir()
                nats_svc = start_nats(run_dir / "nats")
                redis_svc = start_redis(run_dir / "redis")
                try:
                    print(f"-- {mode}: {n} clients", flush=True)
                    rows.append(
                        await _one_run(mode, tree, n, opts, nats_svc, redis_svc, secret, run_dir)
                    )
                finally:
                    redis_svc.stop()
                    nats_svc.stop()
                    shutil.rmtree(run_dir / "nats", ignore_errors=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench fanout", description=__doc__)
    p.add_argument("--clients", default="50,200,1000", help="client counts (default 50,200,1000)")
    p.add_argument("--procs", type=int, default=2, help="client processes (default 2)")
    p.add_argument("--deltas", type=int, default=40, help="text deltas per turn (default 40)")
    p.add_argument("--baseline-ref", default=BASELINE_REF, help="git ref of the baseline API")
    p.add_argument("--no-baseline", dest="baseline_ref", action="store_const", const="")
    p.add_argument("--connect-timeout", type=float, default=90.0)
    p.add_argument("--turn-timeout", type=float, default=60.0)
    p.add_argument("--out", type=Path, default=REPO / ".agc" / "bench" / "fanout.json")
    # Internal: one client process.
    p.add_argument("--client-process", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--host", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--sid", help=argparse.SUPPRESS)
    p.add_argument("--key", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    if opts.client_process:
        # uvloop (uvicorn's loop too): the clients must cost as little as they can.
        uvloop.run(_run_clients(opts))
        return 0
    opts.clients = [int(x) for x in str(opts.clients).split(",") if x]
    rows = asyncio.run(_bench(opts))
    print()
    print(
        "fanout: one session (one finished turn in its history), N clients following /events "
        f"from its start, then a turn of {opts.deltas} deltas published"
    )
    print(_table(rows))
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps([r.__dict__ for r in rows], indent=2))
    print(f"report: {opts.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
