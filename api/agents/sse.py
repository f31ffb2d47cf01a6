"""Server-Sent Events on the wire: event frames, keep-alives and the streaming response."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Iterable
from typing import Any

from litestar import Request
from litestar.response import Stream
from litestar.response.base import ASGIResponse

from api.agents.streams import StreamedEvent
from broker.events import ErrorEvent, encode_event

MEDIA_TYPE = "text/event-stream"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# A comment line: keeps proxies and clients from timing out; no data line, so no event.
KEEPALIVE = b": keep-alive\n\n"
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def frame(ev: StreamedEvent) -> bytes:
    """One event as an SSE frame: ``id`` is its stream sequence, ``event`` its type."""
    if not ev.frame:
        lines = b"".join(b"data: " + part + b"\n" for part in _LINE_BREAK.split(ev.data))
        ev.frame = b"id: %d\nevent: %s\n%s\n" % (ev.seq, ev.type.encode(), lines)
    return ev.frame


def error_frame(session_id: str, code: str, message: str) -> bytes:
    """A stream-level ``error`` event (no ``id``: the client's Last-Event-ID stays valid)."""
    data = encode_event(ErrorEvent(session_id=session_id, code=code, message=message, fatal=False))
    return b"event: error\ndata: " + data + b"\n\n"


class EventStream(Stream):
    """A ``text/event-stream`` response whatever media type the route declares.

    Litestar's ``Stream`` lets the route's media type win over the response's own, so a route
    that answers JSON or SSE (``POST /chat``) sent SSE labelled ``application/json``, which
    standard clients (EventSource, httpx-sse) refuse.
    """

    def __init__(
        self,
        content: AsyncIterable[bytes] | Iterable[bytes],
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(content, media_type=MEDIA_TYPE, headers={**HEADERS, **(headers or {})})

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        media_type: Any = None,
        **kwargs: Any,
    ) -> ASGIResponse:
        return super().to_asgi_response(app, request, media_type=MEDIA_TYPE, **kwargs)
