"""The real API app served by uvicorn inside the test's event loop, on a free loopback port.

For tests that need real HTTP streaming (SSE clients, browsers) without the Docker stack:
Litestar's test client buffers responses, so SSE must go over a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from litestar import Litestar

from api.app import create_app
from api.settings import ApiSettings


def api_settings(
    nats_url: str, redis_url: str, secret_key: str, tmp_path: Path, **extra: Any
) -> ApiSettings:
    """The API's settings for a test's own NATS and Redis: no custom configs, no dashboard."""
    return ApiSettings(
        nats_url=nats_url,
        redis_url=redis_url,
        secret_key=secret_key,
        config_dir=tmp_path / "configs",
        web_dir=tmp_path / "no-web",
        **extra,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServedApi:
    app: Litestar
    settings: ApiSettings
    base_url: str


@asynccontextmanager
async def serve_api(settings: ApiSettings, port: int = 0) -> AsyncIterator[ServedApi]:
    """Serve ``create_app(settings)`` until the block ends (open streams are cut at exit).

    ``port``: 0 for a free one; the same port again to play an API restart.
    """
    port = port or free_port()
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
    )
    # Tests own the loop's signals; the server must not take them.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # raises why it could not start
                raise RuntimeError("uvicorn exited before it started")
            await asyncio.sleep(0.01)
        yield ServedApi(app, settings, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
