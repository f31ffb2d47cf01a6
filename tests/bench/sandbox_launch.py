"""Launch latency, the old way against the sandbox's way, on the real engine and image.

Both launch a locked-down container from the same image with the same limits and volumes, send
the runner its ``init`` over the attach socket and stop the clock at ``session.ready`` (the
CLI connected: it has talked to the model). Old: host networking, user 1000, the model on the
host's loopback and the key in ``init`` (what a loopback ``ANTHROPIC_BASE_URL`` used to give).
Sandbox: ``--network none``, uid 0 with SETUID/SETGID/KILL starting the CLI as 1000, the
worker's gateway socket mounted, only a token in ``init``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import struct
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import docker

from broker.events import peek_event
from broker.runner_wire import Init, decode_envelope, encode_line
from configs.model import AgentConfig
from tests.bench.stats import percentile
from tests.modelserver.server import ModelServer
from workers.sandbox.host import new_sandbox_name
from workers.sandbox.service import SandboxService

_HEADER = struct.Struct(">BxxxI")
CONFIG = {
    "id": "bench",
    "name": "bench",
    "allowed_tools": ["Bash", "Read"],
    "permission_mode": "acceptEdits",
    "system_prompt": "bench",
}


def _ready(sock: socket.socket, timeout: float) -> None:
    """Read frames until the runner's ``session.ready`` (raise on timeout or an error)."""
    sock.settimeout(timeout)
    buf = bytearray()
    while True:
        header = sock.recv(8, socket.MSG_WAITALL)
        if len(header) < 8:
            raise RuntimeError("the runner went away")
        stream, size = _HEADER.unpack(header)
        payload = sock.recv(size, socket.MSG_WAITALL)
        if stream != 1:
            continue
        buf += payload
        while (nl := buf.find(b"\n")) >= 0:
            line, buf[:] = bytes(buf[:nl]), buf[nl + 1 :]
            head = peek_event(bytes(decode_envelope(line).event))
            if head.type == "session.ready":
                return
            if head.type == "error":
                raise RuntimeError(line[:500].decode(errors="replace"))


def _launch(
    dc: docker.DockerClient, image: str, sandboxed: bool, init: Init, run_dir: str
) -> float:
    api = dc.api
    sid = f"bench-{uuid.uuid4().hex[:8]}"
    vols = [f"agc-bench-ws-{sid}", f"agc-bench-home-{sid}"]
    binds: dict[str, Any] = {
        vols[0]: {"bind": "/workspace", "mode": "rw"},
        vols[1]: {"bind": "/home/agent", "mode": "rw"},
    }
    if sandboxed:
        binds[run_dir] = {"bind": "/run/agc", "mode": "ro"}
    host_config = api.create_host_config(
        binds=binds,
        tmpfs={"/tmp": "rw,nosuid,nodev,size=256m,mode=1777"},
        read_only=True,
        cap_drop=["ALL"],
        cap_add=["SETUID", "SETGID", "KILL"] if sandboxed else None,
        security_opt=["no-new-privileges"],
        mem_limit="2g",
        pids_limit=256,
        network_mode="none" if sandboxed else "host",
    )
    t0 = time.perf_counter()
    cid = api.create_container(
        image=image,
        user="0:0" if sandboxed else "1000:1000",
        working_dir="/workspace",
        stdin_open=True,
        detach=True,
        environment={"AGC_AGENT_UID": "1000"} if sandboxed else {},
        host_config=host_config,
        labels={"agc.bench": "1"},
    )["Id"]
    try:
        sock = api.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        raw: socket.socket = getattr(sock, "_sock", sock)
        api.start(cid)
        raw.sendall(encode_line(init))
        _ready(raw, 120)
        seconds = time.perf_counter() - t0
        raw.close()
        return seconds
    finally:
        with contextlib.suppress(Exception):
            api.remove_container(cid, force=True, v=True)
        for v in vols:
            with contextlib.suppress(Exception):
                api.remove_volume(v, force=True)


def bench_launch(image: str, launches: int) -> dict[str, Any]:
    """Return p50/p95 seconds to ``session.ready`` for the old path and the sandbox path."""
    dc = docker.from_env(timeout=120)
    model = ModelServer().start()
    run_root = Path(tempfile.mkdtemp(prefix="agc-bl-", dir="/tmp"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def _noop(*_: Any) -> None:
        return None

    service = SandboxService(
        run_root, upstream=model.base_url, persist=_noop, on_denied=lambda _d: None
    )

    def on_loop(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    old: list[float] = []
    new: list[float] = []
    try:
        for i in range(launches):
            key = f"sk-ant-bench-{i}"
            old.append(
                _launch(
                    dc,
                    image,
                    False,
                    Init(
                        session_id=f"bench-old-{i}",
                        config=CONFIG,
                        api_key=key,
                        env={"ANTHROPIC_BASE_URL": model.base_url},
                    ),
                    "",
                )
            )
            name = new_sandbox_name()
            path = on_loop(service.open(name))
            bound = service.bind(name, f"bench-new-{i}", key, AgentConfig.from_wire(CONFIG))
            new.append(
                _launch(
                    dc,
                    image,
                    True,
                    Init(
                        session_id=f"bench-new-{i}",
                        config=bound.config,
                        gateway_token=bound.token,
                    ),
                    str(path),
                )
            )
            on_loop(service.remove(name))
    finally:
        on_loop(service.aclose())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        model.stop()
        shutil.rmtree(run_root, ignore_errors=True)
        dc.close()
    return {
        "old": {"p50_s": percentile(old, 50), "p95_s": percentile(old, 95), "samples": old},
        "sandbox": {"p50_s": percentile(new, 50), "p95_s": percentile(new, 95), "samples": new},
    }
