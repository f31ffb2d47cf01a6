"""``agcluster up``: NATS (one node or a cluster), Redis, the API and N workers, supervised.

Every process is restarted when it exits unexpectedly (``agcluster/supervisor.py``); Ctrl-C or
SIGTERM stops them all in order. ``<state>/up.lock`` keeps a second ``up`` on the same state dir
from starting, and ``<state>/up.json`` says what runs where (``agcluster/instance.py``).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from agcluster import instance
from agcluster.credentials import Credentials, ensure_credentials
from agcluster.instance import InstanceError
from agcluster.procs import (
    Service,
    ServiceError,
    nats_cluster_args,
    spawn,
    start_nats,
    start_redis,
)
from agcluster.settings import UpSettings
from agcluster.supervisor import Child, Policy, Supervisor

log = structlog.get_logger("agc.up")

# Stop order: workers first (they drain), then the API, then the servers they talk to.
TIER_NATS, TIER_REDIS, TIER_API, TIER_WORKER = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Ports:
    """Every port this stack binds, fixed before anything starts so restarts reuse them."""

    api: int
    redis: int
    nats: tuple[int, ...]
    routes: tuple[int, ...]

    def labelled(self) -> dict[str, int]:
        """``{what: port}`` for messages about ports in use (0: no TCP port)."""
        out = {"API": self.api, "Redis": self.redis}
        for i, port in enumerate(self.nats, start=1):
            out["NATS" if len(self.nats) == 1 else f"NATS node {i}"] = port
        for i, port in enumerate(self.routes, start=1):
            out[f"NATS node {i} routes"] = port
        return out


def choose_ports(s: UpSettings) -> Ports:
    """The configured ports; a 0 becomes a free port now (Redis 0 means its unix socket only)."""

    def pick(base: int, n: int) -> tuple[int, ...]:
        return (
            tuple(instance.free_port() for _ in range(n))
            if base == 0
            else tuple(base + i for i in range(n))
        )

    cluster = s.nats_cluster >= 3
    return Ports(
        api=s.port or instance.free_port(s.host),
        redis=s.redis_port,
        nats=pick(s.nats_port, s.nats_cluster),
        routes=pick(s.nats_cluster_port, s.nats_cluster) if cluster else (),
    )


def secret_key(s: UpSettings, state: Path) -> str:
    """``AGC_SECRET_KEY`` if set, else one generated once and kept (0600) in the state dir."""
    if key := s.secret_key.get_secret_value():
        return key
    path = state / "secret.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def nats_conf(s: UpSettings, state: Path, extra: Sequence[str] = ()) -> Path | None:
    """A config file for what nats-server has no flag for: ``sync_interval``, and ``extra``
    lines (e.g. ``include "credentials/nats-auth.conf"``). None when there is nothing to say."""
    lines = list(extra)
    if s.nats_sync_interval:
        lines.append(f"jetstream {{\n  sync_interval: {s.nats_sync_interval}\n}}")
    if not lines:
        return None
    path = state / "nats.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


# The users and permissions of every role (agcluster/credentials.py), relative to nats.conf.
NATS_AUTH_INCLUDE = 'include "credentials/nats-auth.conf"'


def _nats_children(s: UpSettings, state: Path, logs: Path, ports: Ports) -> list[Child]:
    conf = nats_conf(s, state, extra=[NATS_AUTH_INCLUDE])
    if s.nats_cluster == 1:

        def start_one() -> Service:
            return start_nats(
                state / "nats",
                port=ports.nats[0],
                log_path=logs / "nats.log",
                conf=conf,
                die_with_parent=True,
            )

        return [Child("nats", start_one, TIER_NATS, f"nats://127.0.0.1:{ports.nats[0]}")]

    children = []
    for i, (client, route) in enumerate(zip(ports.nats, ports.routes, strict=True), start=1):
        name = f"nats-{i}"
        args = nats_cluster_args(name, route, ports.routes)

        def start_node(name: str = name, client: int = client, args: list[str] = args) -> Service:
            return start_nats(
                state / name,
                port=client,
                log_path=logs / f"{name}.log",
                name=name,
                conf=conf,
                extra_args=args,
                die_with_parent=True,
            )

        children.append(Child(name, start_node, TIER_NATS, f"nats://127.0.0.1:{client}"))
    return children


def _wait_for_meta_leader(children: list[Child], timeout: float = 30.0) -> None:
    """A JetStream cluster can create replicated streams only once it has elected a leader."""
    rx = re.compile(r"JetStream cluster (new )?metadata leader")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c.svc is not None and rx.search(c.svc.log_text()) for c in children):
            return
        time.sleep(0.05)
    tails = "\n".join(f"--- {c.name}\n{c.svc.log_tail(10)}" for c in children if c.svc)
    raise ServiceError(f"the NATS cluster elected no JetStream leader in {timeout:.0f} s\n{tails}")


def run_up(s: UpSettings) -> int:
    """Run the stack in the foreground until Ctrl-C/SIGTERM; return the exit status."""
    state = s.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    logs = state / "logs"
    logs.mkdir(exist_ok=True)
    try:
        inst = instance.acquire(state)
    except InstanceError as exc:
        print(f"agcluster: {exc}", file=sys.stderr, flush=True)
        return 1
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    retry = False

    def _retry(*_: object) -> None:
        nonlocal retry
        retry = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGHUP, _retry)
    phase: dict[str, Any] = {"phase": "starting", "phase_since": time.time()}
    urls: dict[str, str] = {}
    sup = Supervisor(
        Policy(
            backoff=s.restart_backoff,
            backoff_max=s.restart_backoff_max,
            loop_exits=s.crash_loop_exits,
            loop_window=s.crash_loop_window,
            stop_timeout=s.shutdown_timeout,
        )
    )

    def publish() -> None:
        status = {"pid": os.getpid(), "state_dir": str(state), **phase, **urls}
        inst.write_status({**status, "processes": sup.rows()})

    sup.on_change = publish
    publish()
    try:
        ports = choose_ports(s)
        instance.check_ports(ports.labelled(), "127.0.0.1")
        log.info(f"state in {state}")
        _start_stack(s, sup, state, logs, ports, urls)
        phase.update(phase="running", phase_since=time.time())
        publish()
        log.info(
            f"API + dashboard on {urls['api_url']}  ({s.workers} worker(s); logs in {logs}; "
            "Ctrl-C stops everything)"
        )
        while not stopping:
            if retry:
                retry = False
                sup.retry_given_up()
            sup.tick()
            time.sleep(0.1)
        return 0
    except (ServiceError, InstanceError) as exc:
        print(f"agcluster: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        phase.update(phase="stopping", phase_since=time.time())
        publish()
        log.info("stopping…")
        sup.stop_all()
        log.info("stopped")
        inst.release()


def _tell_operator_token(creds: Credentials) -> None:
    """Say where the operator token is; show it only on an interactive terminal (never a log)."""
    where = creds.dir / "operator.token"
    if sys.stdout.isatty():
        print(f"agcluster: operator token (to save custom configs): {creds.operator_token}")
    print(f"agcluster: the operator token is in {where} (AGC_OPERATOR_TOKEN sets it)", flush=True)


def _start_stack(
    s: UpSettings, sup: Supervisor, state: Path, logs: Path, ports: Ports, urls: dict[str, str]
) -> None:
    creds = ensure_credentials(
        state / "credentials", operator_token=os.environ.get("AGC_OPERATOR_TOKEN") or None
    )
    _tell_operator_token(creds)
    nats_nodes = [sup.add(c) for c in _nats_children(s, state, logs, ports)]
    if len(nats_nodes) > 1:
        _wait_for_meta_leader(nats_nodes)
    nats_url = ",".join(c.address for c in nats_nodes)
    log.info(f"NATS (JetStream, {len(nats_nodes)} node(s), replicas {s.replicas}) on {nats_url}")

    def start_redis_() -> Service:
        return start_redis(
            state / "redis",
            port=ports.redis,
            log_path=logs / "redis.log",
            die_with_parent=True,
            extra_args=["--aclfile", str(creds.redis_acl)],
        )

    redis_child = sup.add(Child("redis", start_redis_, TIER_REDIS))
    assert redis_child.svc is not None
    redis_url = redis_child.svc.url
    redis_child.address = redis_url
    log.info(f"Redis (AOF) on {redis_url}")
    # Where a client on this host reaches it (a wildcard bind is reached on loopback).
    reach = "127.0.0.1" if s.host in ("0.0.0.0", "::", "") else s.host  # noqa: S104
    api_url = f"http://{reach}:{ports.api}"
    urls.update(nats_url=nats_url, redis_url=redis_url, api_url=api_url)
    env = {
        **os.environ,
        "AGC_NATS_URL": nats_url,
        "AGC_REDIS_URL": redis_url,
        "AGC_NATS_REPLICAS": str(s.replicas),
        "AGC_SECRET_KEY": secret_key(s, state),
        "AGC_STATE_DIR": str(state),
        "AGC_CONFIG_DIR": str(s.config_dir or state / "configs"),
        "AGC_HOST": s.host,
        "AGC_PORT": str(ports.api),
    }
    exe = [sys.executable, "-m", "agcluster.cli"]

    def starter(role: str, name: str, child_env: dict[str, str]) -> Child:
        def start() -> Service:
            return spawn(
                name, [*exe, role], logs / f"{name}.log", env=child_env, die_with_parent=True
            )

        tier = TIER_API if role == "api" else TIER_WORKER
        return Child(name, start, tier, api_url if role == "api" else "")

    # Each role logs in as itself (a worker cannot publish users' commands); no secret in argv.
    sup.add(starter("api", "api", {**env, **creds.role_env("api")}))
    env = {**env, **creds.role_env("worker")}
    for i in range(s.workers):
        wid = s.worker_id if s.workers == 1 else ""
        sup.add(
            starter("worker", f"worker-{i + 1}", {**env, "AGC_WORKER_ID": wid or f"local-{i + 1}"})
        )
