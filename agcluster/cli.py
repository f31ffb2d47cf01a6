"""``agcluster``: run the API, a worker, or the whole local stack."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from broker.logging import configure_logging


def _run_api(_: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings
    from broker.connect import ConnectError, check_connections

    settings = ApiSettings()
    log_level = "DEBUG" if settings.debug else settings.log_level  # API_DEBUG, as the original
    configure_logging(log_level, json=settings.log_json)
    try:
        # Credentials and certificates checked before serving: one clear line when wrong.
        asyncio.run(check_connections(settings, name="agc-api"))
    except ConnectError as exc:
        print(f"agcluster api: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level.lower(),
        timeout_graceful_shutdown=5,
        access_log=False,
    )
    return 0


def _run_worker(_: argparse.Namespace) -> int:
    from broker.connect import ConnectError
    from workers.settings import WorkerSettings
    from workers.worker import run_worker

    settings = WorkerSettings()
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        asyncio.run(run_worker(settings))
    except ConnectError as exc:
        # A wrong credential or certificate: say which, without a traceback.
        print(f"agcluster worker: {exc}", file=sys.stderr)
        return 2
    return 0


def _run_credentials(args: argparse.Namespace) -> int:
    """Generate the platform's credentials into a directory (kept if already there)."""
    from agcluster.credentials import CredentialsError, ensure_credentials

    try:
        creds = ensure_credentials(
            Path(args.dir), operator_token=os.environ.get("AGC_OPERATOR_TOKEN") or None
        )
    except CredentialsError as exc:
        print(f"agcluster: {exc}", file=sys.stderr)
        return 1
    # Paths only: the secrets stay in the 0600 files.
    print(
        f"agcluster: credentials in {creds.dir}: nats-auth.conf (nats-server), redis.acl "
        "(redis-server --aclfile), api.env / worker.env / reader.env (one per role)"
    )
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
        return _settings_error(exc)
    configure_logging(settings.log_level, json=settings.log_json)
    return run_up(settings)


def _settings_error(exc: ValidationError) -> int:
    """Say which setting is wrong and why, in one line each; exit code 2."""
    # Field and reason only: pydantic's own text echoes the input, secrets included.
    for err in exc.errors():
        name = "_".join(str(x) for x in err["loc"]).upper()
        # Aliased fields report their first alias, which is already the AGC_ name.
        where = name if name.startswith("AGC_") else f"AGC_{name}" if name else "settings"
        print(f"agcluster: invalid {where}: {err['msg']}", file=sys.stderr)
    return 2


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
    cred = sub.add_parser(
        "credentials", help="generate NATS users, the Redis ACL and the operator token"
    )
    cred.add_argument("--dir", required=True, help="directory to keep them in (created 0700)")
    cred.set_defaults(fn=_run_credentials)
    args = parser.parse_args(argv)
    try:
        code = args.fn(args)
    except ValidationError as exc:  # the api's or a worker's settings, read at start
        code = _settings_error(exc)
    sys.exit(code)


if __name__ == "__main__":
    main()
