"""The compose quick start, run exactly as the README writes it, on this machine's engine.

In a copy of the working tree (hard links, with the caches scripts/setup.sh leaves in .agc/):
``cp .env.example .env``, ``docker compose build``, ``docker compose up -d`` (Compose v2 when the
plugin is installed, else Debian's docker-compose 1.29). The shell environment only makes the
run unique — project name, published port, image tags, cluster name — so it cannot collide
with anything else on the engine, and points the workers at the scripted model server, which
runs as a container on the stack's own network. Then: /health, ``logs -f api``, an agent
launched and chatted with, and the restart policies: the worker, API and NATS processes are
SIGKILLed and the stack comes back by itself with the session still answering. Everything the
test made (containers, volumes, networks, images) is removed afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from tests.support.stack import REPO, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1200)]

# What scripts/setup.sh prepares for `docker compose build` (nothing is fetched while building)
CACHES = (
    ".agc/wheelhouse",
    ".agc/agent-debs",
    ".agc/mcp",
    ".agc/platform-wheels",
    ".agc/platform-debs",
    "web/dist",
)
MODEL_PORT = 9100


def compose_cli() -> list[str]:
    """``docker compose`` (v2) when the plugin is there, else ``docker-compose`` (v1)."""
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if v2.returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise RuntimeError("neither `docker compose` nor docker-compose; run scripts/setup.sh platform")


def copy_tree(dest: Path) -> None:
    """The working tree as a user has it (tracked and new files) plus setup's caches."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        src = REPO / name
        if src.is_file():  # a tracked file someone deleted in the working tree is skipped
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dest / name)
    missing = [c for c in CACHES if not (REPO / c).is_dir()]
    if missing:
        raise RuntimeError(
            f"missing {missing}: run scripts/setup.sh docker image web platform (make test does)"
        )
    for cache in CACHES:
        shutil.copytree(REPO / cache, dest / cache, copy_function=os.link)


@dataclass
class Compose:
    dir: Path
    env: dict[str, str]
    cli: list[str]
    project: str
    log: Path
    # -f files of the running stack (none: the default docker-compose.yml)
    files: list[str] = field(default_factory=list)

    def run(self, *args: str, timeout: float = 900) -> str:
        """Run a command in the copy like a user's shell would; its output goes to the log."""
        with self.log.open("ab") as log:
            log.write(f"\n$ {' '.join(args)}\n".encode())
            log.flush()
            proc = subprocess.run(
                args, cwd=self.dir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                timeout=timeout, check=False,
            )  # fmt: skip
        if proc.returncode != 0:
            raise AssertionError(f"`{' '.join(args)}` exited {proc.returncode}:\n{self.tail()}")
        return self.tail()

    def compose(self, *args: str, timeout: float = 900) -> str:
        files = [a for f in self.files for a in ("-f", f)]
        return self.run(*self.cli, *files, *args, timeout=timeout)

    def tail(self, n: int = 8000) -> str:
        return self.log.read_text(errors="replace")[-n:]


def wait_until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, docker.errors.APIError):
            if value := cond():
                return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Compose]:
    """A copy of the tree after the README's first two commands; its images removed at the end."""
    tmp = tmp_path_factory.mktemp("compose")
    tag = uuid.uuid4().hex[:8]
    project = f"agc-test-{tag}"
    copy = tmp / "agcluster"
    copy_tree(copy)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGC_", "ANTHROPIC_", "COMPOSE_"))}  # fmt: skip
    env.update(
        COMPOSE_PROJECT_NAME=project,
        AGC_API_PORT=str(free_port()),
        AGC_PLATFORM_IMAGE=f"agcluster-platform:test-{tag}",
        AGC_AGENT_IMAGE=f"agcluster-agent:test-{tag}",
        AGC_CLUSTER=project,
        # agents have no network: the workers' model gateway reaches the scripted model
        # server's container on the stack's network
        ANTHROPIC_BASE_URL=f"http://{project}-model:{MODEL_PORT}",
        # the sandboxes' socket directories (a host path the worker shares), the run's own
        AGC_RUN_DIR=str(tmp / "run"),
    )
    c = Compose(copy, env, compose_cli(), project, tmp / "compose.log")
    client = docker.from_env(timeout=60)
    dangling = {i.id for i in client.images.list(filters={"dangling": True})}
    try:
        c.run("cp", ".env.example", ".env")
        t0 = time.monotonic()
        c.compose("build")
        print(f"compose build: {time.monotonic() - t0:.0f} s")
        yield c
    finally:
        remove_images(c, client, dangling)


@pytest.fixture
def compose(built: Compose) -> Iterator[Compose]:
    """The built copy; whatever stack a test brings up is taken down after it."""
    client = docker.from_env(timeout=60)
    try:
        yield built
    finally:
        take_down(built, client)
        print(built.tail(3000))
        built.files = []


def take_down(c: Compose, client: docker.DockerClient) -> None:
    """Remove the model server, the stack's agent containers, and the stack with its volumes."""
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(f"{c.project}-model").remove(force=True)
    # sessions outlive their workers by design, so `down` leaves agent containers behind
    for ctr in client.containers.list(all=True, filters={"label": f"agc.cluster={c.project}"}):
        sid = ctr.labels.get("agc.session", "")
        ctr.remove(force=True, v=True)
        for vol in (f"agc-ws-{sid}", f"agc-home-{sid}"):
            with contextlib.suppress(docker.errors.NotFound):
                client.volumes.get(vol).remove(force=True)
    c.compose("down", "--volumes", "--remove-orphans", timeout=300)
    label = {"label": f"com.docker.compose.project={c.project}"}
    left = [
        *(x.name for x in client.containers.list(all=True, filters=label)),
        *(v.name for v in client.volumes.list(filters=label)),
        *(n.name for n in client.networks.list(names=[f"{c.project}_default"])),
    ]
    assert not left, f"left behind: {left}"


def remove_images(c: Compose, client: docker.DockerClient, dangling_before: set[str]) -> None:
    """Remove the images the build made and its stages' leftovers (dangling once untagged)."""
    for name in (c.env["AGC_PLATFORM_IMAGE"], c.env["AGC_AGENT_IMAGE"]):
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(name, force=True)
    for image in client.images.list(filters={"dangling": True}):
        if image.id not in dangling_before:
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image.id, force=True)
    tags = [t for i in client.images.list() for t in i.tags if c.project.removeprefix("agc-") in t]
    assert not tags, f"images left behind: {tags}"


def start_model_server(c: Compose, client: docker.DockerClient) -> None:
    """The scripted model server, on the network `up` created (test-owned, no loopback)."""
    client.containers.run(
        c.env["AGC_PLATFORM_IMAGE"],
        ["python3", "-m", "tests.modelserver", "--host", "0.0.0.0", "--port", str(MODEL_PORT)],
        entrypoint=[], name=f"{c.project}-model", network=f"{c.project}_default", detach=True,
        environment={"PYTHONPATH": "/src"},
        volumes={str(c.dir / "tests"): {"bind": "/src/tests", "mode": "ro"}},
    )  # fmt: skip


def healthy(base: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        r = httpx.get(f"{base}/health", timeout=5)
        body: dict[str, Any] = r.json()
        return body if r.status_code == 200 and body["workers"]["alive"] >= 1 else None

    return check


def pool_ready(base: str) -> bool:
    body = healthy(base)()
    return body is not None and body["pool"]["ready"] >= 1


def launch_and_chat(c: Compose, base: str, message: str) -> tuple[str, dict[str, str]]:
    """Launch a code-assistant and chat once; the session id and its auth header."""
    api_key = f"sk-test-{uuid.uuid4().hex}"
    auth = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base, timeout=180) as http:
        r = http.post(
            "/api/agents/launch", json={"api_key": api_key, "config_id": "code-assistant"}
        )
        assert r.status_code == 200, f"{r.status_code} {r.text}\n{c.tail()}"
        sid = str(r.json()["session_id"])
        chat(base, sid, auth, message)
    return sid, auth


def chat(base: str, sid: str, auth: dict[str, str], message: str) -> None:
    with httpx.Client(base_url=base, timeout=180) as http:
        r = http.post(f"/api/agents/{sid}/chat", json={"message": message}, headers=auth)
    assert r.status_code == 200 and r.json()["text"] == f"Echo: {message}", r.text


def main_pid(client: docker.DockerClient, container: str) -> int:
    """Host pid of the service's own process (tini's child)."""
    top = client.api.top(container, ps_args="-o pid,ppid,args")
    procs = [dict(zip(top["Titles"], p, strict=True)) for p in top["Processes"]]
    tini = next(p for p in procs if "tini" in p["COMMAND"])
    return int(next(p for p in procs if p["PPID"] == tini["PID"])["PID"])


def services(client: docker.DockerClient, project: str) -> dict[str, list[Any]]:
    """The stack's running containers by compose service."""
    found: dict[str, list[Any]] = {}
    label = {"label": f"com.docker.compose.project={project}"}
    for ctr in client.containers.list(filters=label):
        found.setdefault(ctr.labels["com.docker.compose.service"], []).append(ctr)
    return found


def is_healthy(ctr: Any) -> bool:
    """Whether a container's health check passes now (its attributes read afresh)."""
    ctr.reload()
    return bool(ctr.attrs["State"]["Health"]["Status"] == "healthy")


def kill_and_wait_for_restart(client: docker.DockerClient, victims: list[Any]) -> None:
    """SIGKILL each container's service process; wait for Docker's restart policy."""
    restarts = {v.name: v.attrs["RestartCount"] for v in victims}
    for v in victims:
        os.kill(main_pid(client, v.id), signal.SIGKILL)

    def restarted(v: Any) -> bool:
        v.reload()
        return bool(v.attrs["RestartCount"] > restarts[v.name] and v.attrs["State"]["Running"])

    for v in victims:
        wait_until(functools.partial(restarted, v), 120, f"{v.name} restarted by its policy")


def test_quick_start_builds_runs_and_keeps_itself_up(compose: Compose) -> None:
    """cp .env.example .env; build (fixture); up -d; /health; logs -f api; an agent; crashes."""
    c = compose
    base = f"http://127.0.0.1:{c.env['AGC_API_PORT']}"
    client = docker.from_env(timeout=60)
    c.compose("up", "-d")
    start_model_server(c, client)
    body = wait_until(healthy(base), 180, f"/health 200 with a worker\n{c.tail()}")
    assert body["nats"]["ok"] and body["redis"]["ok"]
    assert httpx.get(f"{base}/", timeout=5).status_code == 200  # the dashboard

    # -- `docker compose logs -f api` shows the API ------------------------------------------
    with subprocess.Popen(
        [*c.cli, "logs", "-f", "--no-color", "api"], cwd=c.dir, env=c.env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    ) as logs:  # fmt: skip
        assert logs.stdout is not None
        seen = []
        for raw in logs.stdout:
            seen.append(raw.decode(errors="replace"))
            if "Uvicorn running on http://0.0.0.0:8000" in seen[-1]:
                break
        logs.send_signal(signal.SIGINT)
        logs.wait(30)
    assert seen and "api" in seen[-1], "".join(seen)

    # -- every long-running service has a restart policy and a health check -----------------
    by_service = services(client, c.project)
    assert {"nats", "redis", "api", "worker"} <= set(by_service), by_service
    for name in ("nats", "redis", "api", "worker"):
        for ctr in by_service[name]:
            ctr.reload()
            assert ctr.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
            wait_until(functools.partial(is_healthy, ctr), 120, f"{ctr.name} healthy")

    # -- NATS and Redis refuse whoever lacks the credentials init generated ----------------
    _, out = by_service["redis"][0].exec_run(["redis-cli", "ping"])
    assert b"NOAUTH" in out, out
    probe = (
        "import socket; s = socket.create_connection(('127.0.0.1', 4222), 5); s.recv(4096); "
        "s.sendall(b'CONNECT {\"verbose\":false}\\r\\nPING\\r\\n'); print(s.recv(4096).decode())"
    )
    _, out = by_service["nats"][0].exec_run(["python3", "-c", probe])
    assert b"Authorization Violation" in out, out

    # -- custom configs need the operator token init generated (readable in the api only) --
    _, token = by_service["api"][0].exec_run(
        ["sed", "-n", "s/^AGC_OPERATOR_TOKEN=//p", "/run/agc-secrets/credentials/api.env"]
    )
    custom = {"id": f"compose-{uuid.uuid4().hex[:6]}", "name": "Compose", "allowed_tools": ["Read"]}
    with httpx.Client(base_url=base, timeout=30) as http:
        assert http.post("/api/configs/custom", json=custom).status_code == 401
        r = http.post(
            "/api/configs/custom",
            json=custom,
            headers={"Authorization": f"Bearer {token.decode().strip()}"},
        )
        assert r.status_code == 201, r.text

    # -- an agent, launched from the image the build made, answering ------------------------
    # The default warm pool keeps a code-assistant slot: the launch claims it.
    wait_until(
        functools.partial(pool_ready, base), 180, f"a warm slot (the default pool)\n{c.tail()}"
    )
    sid, auth = launch_and_chat(c, base, "hello compose")
    session = httpx.get(f"{base}/api/agents/sessions/{sid}", headers=auth, timeout=10).json()
    assert session["warm"] is True, session
    agent = client.containers.get(f"agc-{sid}")
    assert agent.image.tags == [c.env["AGC_AGENT_IMAGE"]]
    assert agent.labels["agc.cluster"] == c.project

    # -- the restart policies keep it up: SIGKILL the worker, API and NATS processes ---------
    kill_and_wait_for_restart(
        client, [by_service["worker"][0], by_service["api"][0], by_service["nats"][0]]
    )
    wait_until(healthy(base), 180, "/health 200 with a worker after the crashes")
    chat(base, sid, auth, "still there")
    with httpx.Client(base_url=base, timeout=60) as http:
        assert http.delete(f"/api/agents/sessions/{sid}", headers=auth).status_code in (200, 204)


def test_nats_cluster_overlay_replicates_and_survives_a_node(compose: Compose) -> None:
    """docker-compose.nats-cluster.yml: three JetStream nodes, streams at three replicas."""
    c = compose
    c.files = ["docker-compose.yml", "docker-compose.nats-cluster.yml"]
    base = f"http://127.0.0.1:{c.env['AGC_API_PORT']}"
    client = docker.from_env(timeout=60)
    c.compose("up", "-d")
    start_model_server(c, client)
    wait_until(healthy(base), 240, f"/health 200 with a worker\n{c.tail()}")
    by_service = services(client, c.project)
    assert {"nats", "nats-2", "nats-3"} <= set(by_service), by_service
    sid, auth = launch_and_chat(c, base, "hello cluster")

    def streams() -> dict[str, Any]:
        code, out = by_service["nats"][0].exec_run(
            ["python3", "-c", "import urllib.request; print(urllib.request.urlopen("
             "'http://127.0.0.1:8222/jsz?streams=true&config=true', timeout=5).read().decode())"]
        )  # fmt: skip
        assert code == 0, out
        details = json.loads(out)["account_details"]
        return {s["name"]: s for a in details for s in a.get("stream_detail", [])}

    found = wait_until(
        lambda: {"AGC_CMD", "AGC_EVT"} <= set(streams()) and streams(), 60, "streams"
    )
    for name in ("AGC_CMD", "AGC_EVT"):
        assert found[name]["config"]["num_replicas"] == 3, found[name]["config"]
    # one node down: the other two keep the streams readable and writable
    node = by_service["nats"][0]
    node.stop(timeout=10)
    chat(base, sid, auth, "one node is down")
    node.start()
    with httpx.Client(base_url=base, timeout=60) as http:
        assert http.delete(f"/api/agents/sessions/{sid}", headers=auth).status_code in (200, 204)
