"""Benchmark the workspace file routes through the real stack.

``python -m tests.bench.files`` (or ``python -m tests.bench files``) starts its own stack
(NATS, Redis, API, one worker, Docker) and a scripted model server, launches one session and
measures, through the HTTP API:

* the tree of a workspace holding ``--tree-files`` files (p50/p95 over ``--runs`` requests);
* the upload of one ``--upload-mb`` MiB file (seconds and MB/s, best and median of 3);
* the ZIP download of ``--zip-files`` files totalling ``--zip-mb`` MiB (MB/s), while a thread
  samples the API process's ``VmRSS`` every 5 ms: its growth over the baseline taken just
  before is the API's memory cost of streaming the archive.

Targets (issue 4): upload ≤ 2 s; zip ≥ 100 MB/s with API growth < 64 MB.
The workspaces are filled directly in the volume (the benchmark runs as root on the Docker
host), which is not what is being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import docker

from broker.connect import connect_nats
from tests.modelserver.server import ModelServer
from tests.support.stack import Stack, running_stack

MiB = 1024 * 1024
AGENT_UID = 1000


def _rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in KiB."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


class RssSampler(threading.Thread):
    """Samples a process's resident memory until stopped; keeps the peak."""

    def __init__(self, pid: int, every: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.baseline = _rss_kib(pid)[0]
        self.peak = self.baseline
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, _rss_kib(self.pid)[0])
            time.sleep(self.every)

    def stop(self) -> int:
        """Stop; return the peak growth over the baseline, in KiB."""
        self._halt.set()
        self.join()
        self.peak = max(self.peak, _rss_kib(self.pid)[0])
        return self.peak - self.baseline


def _volume(sid: str) -> Path:
    vol = docker.from_env().volumes.get(f"agc-ws-{sid}")
    return Path(vol.attrs["Mountpoint"])


def _fill(root: Path, files: int, size: int, *, per_dir: int = 100, random: bool = False) -> None:
    """``files`` files of ``size`` bytes in directories of ``per_dir``, owned by the agent."""
    payload = os.urandom(size) if random else b"x" * size
    for i in range(files):
        d = root / f"dir{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, AGENT_UID, AGENT_UID)
        p = d / f"file{i:06d}.dat"
        # Vary the content a little so nothing downstream can cheat on identical files.
        p.write_bytes(payload[:-8] + i.to_bytes(8, "little") if size >= 8 else payload)
        os.chown(p, AGENT_UID, AGENT_UID)
    os.chown(root, AGENT_UID, AGENT_UID)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_tree(stack: Stack, key: str, sid: str, files: int, runs: int) -> None:
    _fill(_volume(sid) / "tree", files, 100)
    times: list[float] = []
    size = 0
    with stack.client(key) as c:
        c.get(f"/api/files/{sid}").raise_for_status()  # warm the volume-path cache
        for _ in range(runs):
            t0 = time.perf_counter()
            r = c.get(f"/api/files/{sid}")
            times.append(time.perf_counter() - t0)
            r.raise_for_status()
            size = len(r.content)
            assert r.json()["total_files"] >= files
    print(
        f"tree, {files} files ({size / MiB:.1f} MiB of JSON): "
        f"p50 {_pct(times, 0.5) * 1000:.0f} ms, p95 {_pct(times, 0.95) * 1000:.0f} ms "
        f"(n={runs})",
        flush=True,
    )


def bench_upload(stack: Stack, key: str, sid: str, mib: int) -> None:
    data = os.urandom(mib * MiB)
    assert stack.api is not None
    times: list[float] = []
    growth = 0
    with stack.client(key, timeout=300) as c:
        for _ in range(3):
            sampler = RssSampler(stack.api.pid)
            sampler.start()
            t0 = time.perf_counter()
            r = c.post(
                f"/api/files/{sid}/upload",
                files=[("files", ("upload.bin", data, "application/octet-stream"))],
                data={"target_path": "uploads", "overwrite": "true"},
            )
            times.append(time.perf_counter() - t0)
            growth = max(growth, sampler.stop())
            assert r.status_code == 200, r.text
            assert r.json()["uploaded"][0]["size"] == len(data)
    best, med = min(times), statistics.median(times)
    print(
        f"upload, one {mib} MiB file: best {best:.2f} s ({mib * MiB / best / 1e6:.0f} MB/s), "
        f"median {med:.2f} s; API RSS growth {growth / 1024:.1f} MiB  [target ≤ 2 s]",
        flush=True,
    )


def bench_zip(stack: Stack, key: str, sid: str, files: int, mib: int) -> None:
    _fill(_volume(sid) / "zipset", files, mib * MiB // files, per_dir=100, random=True)
    assert stack.api is not None
    rates: list[float] = []
    growths: list[int] = []
    for _ in range(3):
        sampler = RssSampler(stack.api.pid)
        sampler.start()
        got = 0
        with stack.client(key, timeout=300) as c:
            t0 = time.perf_counter()
            with c.stream("POST", f"/api/files/{sid}/download", params={"path": "zipset"}) as r:
                assert r.status_code == 200, r.read()
                for chunk in r.iter_raw(1024 * 1024):
                    got += len(chunk)
            elapsed = time.perf_counter() - t0
        growths.append(sampler.stop())
        rates.append(got / elapsed / 1e6)
        assert got > mib * MiB
    _, hwm = _rss_kib(stack.api.pid)
    print(
        f"zip, {files} files / {mib} MiB: best {max(rates):.0f} MB/s, "
        f"median {statistics.median(rates):.0f} MB/s; API RSS growth during it: "
        f"max {max(growths) / 1024:.1f} MiB (API VmHWM {hwm / 1024:.0f} MiB)  "
        "[target ≥ 100 MB/s, < 64 MiB]",
        flush=True,
    )


def _stream_bytes(stack: Stack) -> int:
    """Bytes held in the AGC_FILES object store right now."""

    async def _get() -> int:
        assert stack.nats is not None
        nc = await connect_nats(stack.nats.url, name="bench-files")
        try:
            return int((await nc.jetstream().stream_info("OBJ_AGC_FILES")).state.bytes)
        finally:
            await nc.close()

    return asyncio.run(_get())


def bench_slow_client(stack: Stack, key: str, sid: str, seconds: float = 4.0) -> None:
    """A client reading at ~20 MB/s: the worker must wait for it, not fill NATS or the API."""
    assert stack.api is not None
    sampler = RssSampler(stack.api.pid)
    sampler.start()
    lead = 0
    got = 0
    with (
        stack.client(key, timeout=300) as c,
        c.stream("POST", f"/api/files/{sid}/download", params={"path": "zipset"}) as r,
    ):
        t0 = time.perf_counter()
        for chunk in r.iter_raw(1024 * 1024):
            got += len(chunk)
            time.sleep(0.05)
            if got % (16 * MiB) < MiB:
                lead = max(lead, _stream_bytes(stack))
            if time.perf_counter() - t0 > seconds:
                break
    growth = sampler.stop()
    print(
        f"zip to a slow client (~20 MB/s, {got / MiB:.0f} MiB read): object-store lead max "
        f"{lead / MiB:.0f} MiB (window 64 MiB + in flight), API RSS growth {growth / 1024:.1f} MiB",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.files", description=__doc__)
    parser.add_argument("--tree-files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--upload-mb", type=int, default=50)
    parser.add_argument("--zip-files", type=int, default=1_000)
    parser.add_argument("--zip-mb", type=int, default=200)
    opts = parser.parse_args(argv)
    model = ModelServer("127.0.0.1", 0).start()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="agc-bench-files-") as tmp,
            running_stack(Path(tmp), model.base_url) as stack,
        ):
            key = f"sk-bench-{uuid.uuid4().hex}"
            sid = stack.launch(key)
            assert stack.api is not None
            print(f"session {sid}; API pid {stack.api.pid}", flush=True)
            bench_tree(stack, key, sid, opts.tree_files, opts.runs)
            # The zip before the upload, so the API's baseline is not an upload's leftovers.
            bench_zip(stack, key, sid, opts.zip_files, opts.zip_mb)
            bench_slow_client(stack, key, sid)
            bench_upload(stack, key, sid, opts.upload_mb)
            stack.delete(sid, key)
    finally:
        model.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
