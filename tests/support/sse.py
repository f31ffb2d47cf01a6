"""Parse Server-Sent Events from an httpx streaming response, as the WHATWG spec says.

The platform's own reader for tests (beside httpx-sse and the browser's EventSource): lines end
in LF, CRLF or CR; a line without a colon is a field with an empty value; the last event id
persists across events; an event whose data buffer is empty is not dispatched; comments
(keep-alives) are skipped. Every event's data is the platform's JSON.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Sse:
    # The event's own ``id:`` field (None when it had none, e.g. a stream-level error).
    id: int | None
    event: str
    data: dict[str, Any]
    # The stream's last event id at dispatch (what EventSource reports as ``lastEventId``).
    last_id: str = ""
    # The data as sent (``data`` is left empty when the decoder was told not to parse it).
    text: str = ""


@dataclass
class SseDecoder:
    """Feed it lines; it returns an :class:`Sse` whenever a blank line completes one.

    ``parse=False`` leaves each event's JSON unparsed (in ``text``): for clients that must stay
    cheap, like the fan-out benchmark's thousand.
    """

    parse: bool = True
    last_id: str = ""
    retry_ms: int | None = None
    _id: int | None = None
    _event: str = ""
    _data: list[str] = field(default_factory=list)
    _first: bool = True

    def line(self, line: str) -> Sse | None:
        if self._first:
            line = line.removeprefix("\ufeff")
            self._first = False
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
            self._id = int(value) if value.isdigit() else None
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> Sse | None:
        data, event, own_id = self._data, self._event or "message", self._id
        self._data, self._event, self._id = [], "", None
        if not data:
            return None
        text = "\n".join(data)
        return Sse(own_id, event, json.loads(text) if self.parse else {}, self.last_id, text)


class LineSplitter:
    """Split text into lines on LF, CRLF or CR, whatever the chunk boundaries."""

    def __init__(self) -> None:
        self._buf = ""

    def feed(self, chunk: str) -> Iterator[str]:
        buf = self._buf + chunk
        while True:
            cut = min((i for i in (buf.find("\r"), buf.find("\n")) if i >= 0), default=-1)
            if cut < 0 or (buf[cut] == "\r" and cut == len(buf) - 1):
                break  # a CR at the end may be half of a CRLF: wait for more
            end = cut + 2 if buf.startswith("\r\n", cut) else cut + 1
            yield buf[:cut]
            buf = buf[end:]
        self._buf = buf


def iter_sse(response: httpx.Response, decoder: SseDecoder | None = None) -> Iterator[Sse]:
    """Yield each event (comments and keep-alives skipped) as the response streams."""
    dec, lines = decoder or SseDecoder(), LineSplitter()
    for chunk in response.iter_text():
        for line in lines.feed(chunk):
            if (ev := dec.line(line)) is not None:
                yield ev


async def aiter_sse(
    response: httpx.Response, decoder: SseDecoder | None = None
) -> AsyncIterator[Sse]:
    """Like :func:`iter_sse`, for an ``httpx.AsyncClient`` response."""
    dec, lines = decoder or SseDecoder(), LineSplitter()
    async for chunk in response.aiter_text():
        for line in lines.feed(chunk):
            if (ev := dec.line(line)) is not None:
                yield ev


def event_ids(events: Iterable[Sse]) -> list[int]:
    """The events' ids in order; every event must have one (only a stream-level error has none)."""
    ids: list[int] = []
    for e in events:
        assert e.id is not None, f"a {e.event!r} event without an id: {e.data}"
        ids.append(e.id)
    return ids
