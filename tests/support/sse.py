"""Parse Server-Sent Events from an httpx streaming response."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Sse:
    id: int | None
    event: str
    data: dict[str, Any]


def iter_sse(response: httpx.Response) -> Iterator[Sse]:
    """Yield each event (comments and keep-alives skipped) as the response streams."""
    ev_id: int | None = None
    event = "message"
    data: list[str] = []
    for line in response.iter_lines():
        if line == "":
            # The SSE rule: an event whose data is empty is not dispatched.
            if data and "\n".join(data):
                yield Sse(ev_id, event, json.loads("\n".join(data)))
            ev_id, event, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "id":
            ev_id = int(value)
        elif field == "event":
            event = value
        elif field == "data":
            data.append(value)
