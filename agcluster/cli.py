"""``agcluster``: run the API, a worker, or the whole local stack."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from agcluster.procs import Service, ServiceError, start_nats, start_redis
from broker.logging import configure_logging


def _run_api(_: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings

    settings = ApiSettings()
    configure_logging(settings.log_level, json=settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=5,
        access_log=False,
    )
    return 0


def _run_worker(_: argparse.Namespace) -> int:
    from workers.settings import WorkerSettings
    from workers.worker import run_worker

    settings = WorkerSettings()
    configure_logging(settings.log_level, json=settings.log_json)
    asyncio.run(run_worker(settings))
    return 0


def _secret_key(state: Path) -> str:
    """``AGC_SECRET_KEY`` if set, else one generated once and kept (0600) in the state dir."""
    if key := os.environ.get("AGC_SECRET_KEY"):
        return key
    path = state / "secret.key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _run_up(args: argparse.Namespace) -> int:
    """Run NATS, Redis, the API and N workers in the foreground; Ctrl-C stops them all."""
    state = Path(os.environ.get("AGC_STATE_DIR", ".agc")).resolve()
    state.mkdir(parents=True, exist_ok=True)
    logs = state / "logs"
    logs.mkdir(exist_ok=True)
    nats_port = int(os.environ.get("AGC_NATS_PORT", "4222"))
    redis_port = int(os.environ.get("AGC_REDIS_PORT", "6379"))
    api_port = os.environ.get("AGC_PORT", "8000")
    children: list[Service] = []
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        print(f"agcluster: state in {state}", flush=True)
        nats = start_nats(state / "nats", port=nats_port, log_path=logs / "nats.log")
        children.append(nats)
        print(f"agcluster: NATS (JetStream) on {nats.url}", flush=True)
        redis = start_redis(state / "redis", port=redis_port, log_path=logs / "redis.log")
        children.append(redis)
        print(f"agcluster: Redis (AOF) on {redis.url}", flush=True)
        env = {
            **os.environ,
            "AGC_NATS_URL": nats.url,
            "AGC_REDIS_URL": redis.url,
            "AGC_SECRET_KEY": _secret_key(state),
            "AGC_STATE_DIR": str(state),
            "AGC_CONFIG_DIR": os.environ.get("AGC_CONFIG_DIR", str(state / "configs")),
            "AGC_PORT": api_port,
        }
        base_url = env.get("ANTHROPIC_BASE_URL", "")
        if "AGC_AGENT_NETWORK" not in env and base_url.startswith(
            ("http://127.", "http://localhost", "https://127.", "https://localhost")
        ):
            # A gateway on this host's loopback is only reachable from host networking.
            env["AGC_AGENT_NETWORK"] = "host"
        exe = [sys.executable, "-m", "agcluster.cli"]
        api_log = (logs / "api.log").open("ab")
        api = subprocess.Popen([*exe, "api"], env=env, stdout=api_log, stderr=subprocess.STDOUT)
        children.append(Service("api", api, logs / "api.log"))
        for i in range(args.workers):
            wenv = {**env, "AGC_WORKER_ID": env.get("AGC_WORKER_ID", f"local-{i + 1}")}
            wlog = (logs / f"worker-{i + 1}.log").open("ab")
            proc = subprocess.Popen(
                [*exe, "worker"], env=wenv, stdout=wlog, stderr=subprocess.STDOUT
            )
            children.append(Service(f"worker-{i + 1}", proc, logs / f"worker-{i + 1}.log"))
        print(
            f"agcluster: API + dashboard on http://localhost:{api_port}  "
            f"({args.workers} worker(s); logs in {logs}; Ctrl-C stops everything)",
            flush=True,
        )
        while not stopping:
            for c in children:
                if not c.alive():
                    print(
                        f"agcluster: {c.name} exited unexpectedly:\n{c.log_tail()}",
                        file=sys.stderr,
                        flush=True,
                    )
                    stopping = True
                    break
            time.sleep(0.3)
        return 0
    except ServiceError as exc:
        print(f"agcluster: {exc}", file=sys.stderr)
        return 1
    finally:
        print("agcluster: stopping…", flush=True)
        # Workers and API first (they drain), then the servers they talk to.
        for c in reversed(children):
            c.stop(timeout=25.0)
        print("agcluster: stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="agcluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("api", help="run the API (and the dashboard) server").set_defaults(fn=_run_api)
    sub.add_parser("worker", help="run one worker").set_defaults(fn=_run_worker)
    up = sub.add_parser("up", help="run NATS, Redis, the API and workers in the foreground")
    up.add_argument("--workers", type=int, default=int(os.environ.get("AGC_WORKERS", "1")))
    up.set_defaults(fn=_run_up)
    args = parser.parse_args(argv)
    sys.exit(args.fn(args))


if __name__ == "__main__":
    main()
