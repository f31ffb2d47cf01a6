"""The real platform for tests: NATS, Redis, the API and workers as separate processes.

Containers have no network (``--network none``): the scripted model server on the host's
loopback is reached by the workers' model gateway, never by a container.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import docker
import httpx

from agcluster.credentials import Credentials, ensure_credentials
from agcluster.procs import Service
from tests.support.auth import start_nats_with_auth, start_redis_with_acl
from tests.support.sse import Sse, iter_sse
from workers.storage import WorkspaceStorage

REPO = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("AGC_AGENT_IMAGE", "agcluster-agent:latest")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_docker() -> docker.DockerClient:
    """The Docker engine and the agent image, or a loud failure saying how to get them."""
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:
        raise RuntimeError(
            f"the Docker engine is not reachable ({exc}); run `make test` (it starts dockerd)"
        ) from exc
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound as exc:
        raise RuntimeError(f"agent image {IMAGE} missing; run `make image`") from exc
    return client


@dataclass
class Stack:
    tmp: Path
    model_url: str
    nats: Service | None = None
    redis: Service | None = None
    api: subprocess.Popen[bytes] | None = None
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    # Every worker id this stack ever ran: its containers are this stack's to clean up.
    worker_ids: set[str] = field(default_factory=set)
    cluster: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:10]}")
    _logs: list[IO[bytes]] = field(default_factory=list)
    # NATS users per role, the Redis ACL user and the operator token, as `agcluster up` makes.
    creds: Credentials | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        assert self.nats is not None and self.redis is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AGC_", "ANTHROPIC_"))}
        env.update(
            AGC_NATS_URL=self.nats.extra["url:api"],
            AGC_REDIS_URL=self.redis.url,
            AGC_SECRET_KEY=self.secret,
            AGC_OPERATOR_TOKEN=self.operator_token,
            AGC_STATE_DIR=str(self.tmp),
            AGC_CONFIG_DIR=str(self.tmp / "configs"),
            AGC_HOST="127.0.0.1",
            AGC_PORT=str(self.port),
            AGC_AGENT_IMAGE=IMAGE,
            ANTHROPIC_BASE_URL=self.model_url,
            AGC_LOG_LEVEL="INFO",
            AGC_HEARTBEAT_INTERVAL="0.5",
            AGC_HEARTBEAT_TTL="3",
            # Stacks share the Docker engine: each only ever touches its own containers.
            AGC_CLUSTER=self.cluster,
            # No warm pool unless a test asks (the default's slot is one more container).
            AGC_POOL_CONFIGS="",
        )
        env.update(self.extra_env)
        return env

    def _spawn(self, role: str, name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("ab")
        self._logs.append(log)
        return subprocess.Popen(
            [sys.executable, "-m", "agcluster.cli", role],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    @property
    def operator_token(self) -> str:
        return self.credentials().operator_token

    def credentials(self) -> Credentials:
        if self.creds is None:
            self.creds = ensure_credentials(self.tmp / "credentials")
        return self.creds

    def start_services(self) -> None:
        self.nats = start_nats_with_auth(self.tmp / "nats", self.credentials())
        self.redis = start_redis_with_acl(self.tmp / "redis", self.credentials())

    def start_api(self) -> None:
        self.api = self._spawn("api", "api", self.env())
        self.wait_http()

    def start_worker(self, worker_id: str | None = None, **env: str) -> str:
        wid = worker_id or f"tw-{uuid.uuid4().hex[:8]}"
        self.worker_ids.add(wid)
        assert self.nats is not None
        # Workers log in as the worker role: they cannot publish users' commands.
        role = {"AGC_NATS_URL": self.nats.extra["url:worker"]}
        self.workers[wid] = self._spawn(
            "worker", f"worker-{wid}", {**self.env(), **role, "AGC_WORKER_ID": wid, **env}
        )
        return wid

    def stop_worker(self, wid: str, *, kill: bool = False) -> None:
        proc = self.workers.pop(wid)
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        proc.wait(30)

    def stop_api(self, *, kill: bool = False) -> None:
        if self.api is not None:
            self.api.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.api.wait(30)
            self.api = None

    def restart_nats(self, downtime: float = 1.0) -> None:
        """Stop nats-server and start it again on the same port with the same store."""
        assert self.nats is not None
        port = int(self.nats.extra["port"])
        self.nats.stop()
        time.sleep(downtime)
        self.nats = start_nats_with_auth(self.tmp / "nats", self.credentials(), port=port)

    def restart_redis(self, downtime: float = 1.0) -> None:
        """Stop redis-server (it syncs its AOF) and start it again on the same socket."""
        assert self.redis is not None
        self.redis.stop()
        time.sleep(downtime)
        self.redis = start_redis_with_acl(self.tmp / "redis", self.credentials())

    def wait_http(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.api is not None and self.api.poll() is not None:
                raise RuntimeError(f"API exited:\n{self.log('api')}")
            try:
                httpx.get(f"{self.base_url}/health", timeout=1.0)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"API did not answer in {timeout} s:\n{self.log('api')}")

    def wait_workers(self, n: int = 1, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = httpx.get(f"{self.base_url}/health", timeout=2.0)
            if r.json()["workers"]["alive"] >= n:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{n} worker(s) not alive in {timeout} s:\n{self.all_logs()}")

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def all_logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in self.tmp.glob("*.log")
        )

    def close(self) -> None:
        for wid in list(self.workers):
            proc = self.workers[wid]
            try:
                self.stop_worker(wid)
            except Exception:
                proc.kill()
                proc.wait(10)
        self.stop_api()
        remove_containers("agc.managed=1", worker_ids=self.worker_ids)
        # The workspaces the workers loop-mounted for those containers (workers/storage.py):
        # a mount left behind would keep the test's tmp dir from ever being removed.
        WorkspaceStorage(self.tmp / "storage").remove_all()
        for svc in (self.redis, self.nats):
            if svc is not None:
                svc.stop()
        for log in self._logs:
            log.close()

    # -- client helpers ------------------------------------------------------------------
    def client(self, api_key: str | None = None, timeout: float = 120.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def launch(self, api_key: str, config_id: str | None = "code-assistant", **body: Any) -> str:
        with self.client() as c:
            r = c.post(
                "/api/agents/launch", json={"api_key": api_key, "config_id": config_id, **body}
            )
        assert r.status_code == 200, f"{r.status_code} {r.text}\n{self.all_logs()}"
        return str(r.json()["session_id"])

    def chat_sse(self, sid: str, api_key: str, message: str) -> list[Sse]:
        with (
            self.client(api_key) as c,
            c.stream(
                "POST",
                f"/api/agents/{sid}/chat",
                json={"message": message},
                headers={"Accept": "text/event-stream"},
            ) as r,
        ):
            assert r.status_code == 200, r.read()
            return list(iter_sse(r))

    def delete(self, sid: str, api_key: str) -> None:
        with self.client(api_key) as c:
            c.delete(f"/api/agents/sessions/{sid}")


def remove_containers(label: str, *, worker_ids: set[str] | None = None) -> None:
    """Remove the agent containers (and their volumes) that carry ``label`` (``key=value``);
    with ``worker_ids``, only those these workers created: others are left alone."""
    client = docker.from_env(timeout=30)
    for c in client.containers.list(all=True, filters={"label": label}):
        if worker_ids is not None and c.labels.get("agc.worker", "") not in worker_ids:
            continue
        sid = c.labels.get("agc.session", "")
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            c.remove(force=True, v=True)
        for vol in (f"agc-ws-{sid}", f"agc-home-{sid}"):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                client.volumes.get(vol).remove(force=True)


@contextmanager
def running_stack(
    tmp: Path, model_url: str, *, workers: int = 1, extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    require_docker()
    stack = Stack(tmp=tmp, model_url=model_url, extra_env=extra_env or {})
    try:
        stack.start_services()
        stack.start_api()
        for _ in range(workers):
            stack.start_worker()
        stack.wait_workers(workers)
        yield stack
    finally:
        stack.close()
