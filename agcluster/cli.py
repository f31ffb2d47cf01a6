"""``agcluster``: run the API, a worker, or the whole local stack."""

from __future__ import annotations

import argparse
import asyncio
import sys

from pydantic import ValidationError

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


def _run_up(args: argparse.Namespace) -> int:
    """Run NATS, Redis, the API and N workers in the foreground, supervised; Ctrl-C stops all."""
    from agcluster.settings import UpSettings
    from agcluster.up import run_up

    overrides = {
        k: v
        for k, v in {"workers": args.workers, "nats_cluster": args.nats_cluster}.items()
        if v is not None
    }
    try:
        settings = UpSettings(**overrides)
    except ValidationError as exc:
        # Field and reason only: pydantic's own text echoes the input, secrets included.
        for err in exc.errors():
            where = "AGC_" + "_".join(str(x) for x in err["loc"]).upper() if err["loc"] else ""
            print(f"agcluster: invalid {where or 'settings'}: {err['msg']}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, json=settings.log_json)
    return run_up(settings)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="agcluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("api", help="run the API (and the dashboard) server").set_defaults(fn=_run_api)
    sub.add_parser("worker", help="run one worker").set_defaults(fn=_run_worker)
    up = sub.add_parser("up", help="run NATS, Redis, the API and workers in the foreground")
    up.add_argument("--workers", type=int, help="worker processes (AGC_WORKERS, default 1)")
    up.add_argument(
        "--nats-cluster",
        type=int,
        metavar="N",
        help="run N nats-server nodes as one JetStream cluster (AGC_NATS_CLUSTER; 1 or 3+)",
    )
    up.set_defaults(fn=_run_up)
    args = parser.parse_args(argv)
    sys.exit(args.fn(args))


if __name__ == "__main__":
    main()
