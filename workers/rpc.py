"""Request/reply operations the owning worker answers for its sessions.

Subjects are ``agc.rpc.<sid>.<op>``; requests and replies are JSON. A reply that failed
carries ``{"error": code, "detail": message, "status": http_status}`` so the API can map it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import structlog
from nats.aio.msg import Msg

from workers.host import Host, SessionRef

log = structlog.get_logger("agc.rpc")

Handler = Callable[[SessionRef, Msg], Awaitable[Any]]


class RpcError(Exception):
    """An operation failed in a way the caller should see (status is the HTTP status)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def error_reply(status: int, code: str, detail: str) -> bytes:
    return msgspec.json.encode({"error": code, "detail": detail, "status": status})


class RpcRouter:
    """Maps operation names to handlers; each handler returns a JSON-able value or bytes."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.handlers: dict[str, Handler] = {"stats": self._stats}

    def register(self, op: str, handler: Handler) -> None:
        self.handlers[op] = handler

    async def handle(self, session: SessionRef, op: str, msg: Msg) -> None:
        handler = self.handlers.get(op)
        try:
            if handler is None:
                raise RpcError(404, "unknown_operation", f"unknown operation {op!r}")
            result = await handler(session, msg)
            reply = result if isinstance(result, bytes) else msgspec.json.encode(result)
        except RpcError as exc:
            reply = error_reply(exc.status, exc.code, exc.detail)
        except Exception as exc:
            log.exception("rpc failed", session_id=session.session_id, op=op)
            reply = error_reply(500, "worker_error", f"{type(exc).__name__}: {exc}")
        if msg.reply:
            await msg.respond(reply)

    async def _stats(self, session: SessionRef, _: Msg) -> dict[str, Any]:
        stats = await self.host.provider.stats(session.container_id)
        if stats is None:
            raise RpcError(404, "no_stats", "the container is not running")
        return stats
