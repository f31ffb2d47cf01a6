"""Connect to NATS with reconnects that never give up, and log what happens."""

from __future__ import annotations

import structlog
from nats.aio.client import Client as NATS

log = structlog.get_logger("agc.nats")


async def connect_nats(url: str, *, name: str, connect_timeout: float = 5.0) -> NATS:
    """Connect to ``url`` (comma-separated for several servers), reconnecting forever after.

    The first connection is retried too (a stack starting in any order still comes up).
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
    await nc.connect(
        servers=url.split(","),
        name=name,
        connect_timeout=connect_timeout,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        retry_on_failed_connect=True,
        disconnected_cb=_disconnected,
        reconnected_cb=_reconnected,
        error_cb=_error,
        closed_cb=_closed,
    )
    return nc
