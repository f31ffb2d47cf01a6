"""Connect to NATS with reconnects that never give up, and log what happens."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.errors import NoServersError

log = structlog.get_logger("agc.nats")


async def connect_nats(
    url: str, *, name: str, connect_timeout: float = 5.0, first_attempt_for: float = 60.0
) -> NATS:
    """Connect to ``url`` (comma-separated for several servers), reconnecting forever after.

    The first connection is retried for ``first_attempt_for`` seconds too, so a stack whose
    processes start in any order still comes up.
    """

    async def _disconnected() -> None:
        log.warning("nats disconnected")

    async def _reconnected() -> None:
        log.info("nats reconnected", url=str(nc.connected_url.netloc if nc.connected_url else ""))

    async def _error(exc: Exception) -> None:
        log.warning("nats error", error=str(exc))

    async def _closed() -> None:
        log.info("nats connection closed")

    nc = NATS()
    deadline = asyncio.get_running_loop().time() + first_attempt_for
    while True:
        try:
            await _connect(
                nc, url, name, connect_timeout, _disconnected, _reconnected, _error, _closed
            )
            return nc
        except (TimeoutError, OSError, NoServersError) as exc:
            if asyncio.get_running_loop().time() >= deadline:
                raise
            log.warning("nats not reachable yet", error=str(exc) or type(exc).__name__)
            await asyncio.sleep(0.5)


async def _connect(nc: NATS, url: str, name: str, connect_timeout: float, *cbs: Any) -> None:
    disconnected, reconnected, error, closed = cbs
    await nc.connect(
        servers=url.split(","),
        name=name,
        connect_timeout=connect_timeout,  # type: ignore[arg-type]  # float works; stub says int
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type]
        disconnected_cb=disconnected,
        reconnected_cb=reconnected,
        error_cb=error,
        closed_cb=closed,
    )
