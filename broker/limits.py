"""Size limits on what comes out of a sandbox, and how an event is cut down to fit them.

The runner's stdout is untrusted input to the worker: a line longer than
:data:`MAX_LINE_BYTES` is discarded by the worker (its memory stays bounded), and an event
larger than a NATS message is cut down by :func:`fit_event` before it is published. The
runner cuts its own events to :data:`RUNNER_EVENT_BYTES` first, so a legitimate large event
(a model writing a huge answer) arrives shortened with a marker instead of being dropped.
Both sides import this module; it depends on msgspec alone.
"""

from __future__ import annotations

from typing import Any

import msgspec

# The longest stdout line the worker buffers (NATS's default max_payload is 1 MiB).
MAX_LINE_BYTES = 1 << 20
# What the runner cuts its events to: below the line limit, with room for the envelope.
RUNNER_EVENT_BYTES = 900 << 10
_MARK = "…[truncated {n} bytes]"
_SMALLEST = 64


def fit_event(data: bytes, limit: int) -> bytes:
    """Return ``data`` (one JSON event) if it fits in ``limit`` bytes, else a shortened copy.

    Long strings are cut (with a marker saying how much) until the event fits, and
    ``"truncated": true`` is added. An event that still does not fit (or is not a JSON
    object) becomes an ``error`` event of code ``event_too_large`` for the same session/turn.
    """
    if len(data) <= limit:
        return data
    try:
        event = msgspec.json.decode(data)
    except msgspec.DecodeError:
        event = None
    if isinstance(event, dict):
        cap = max(limit // 4, _SMALLEST)
        while cap >= _SMALLEST:
            out = msgspec.json.encode({**_cut(event, cap), "truncated": True})
            if len(out) <= limit:
                return out
            cap //= 2
    head = event if isinstance(event, dict) else {}
    return msgspec.json.encode(
        {
            "type": "error",
            "session_id": str(head.get("session_id", ""))[:200],
            "turn_id": head.get("turn_id") if isinstance(head.get("turn_id"), str) else None,
            "ts": head.get("ts", 0.0) if isinstance(head.get("ts"), int | float) else 0.0,
            "v": 1,
            "code": "event_too_large",
            "message": f"a {str(head.get('type', 'malformed'))[:60]} event of {len(data)} bytes "
            f"did not fit in {limit} bytes and was dropped",
            "detail": "",
            "fatal": False,
        }
    )


def _cut(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        if len(value) <= cap:
            return value
        return value[:cap] + _MARK.format(n=len(value.encode()) - len(value[:cap].encode()))
    if isinstance(value, dict):
        return {k: _cut(v, cap) for k, v in value.items()}
    if isinstance(value, list):
        # A list longer than the cap keeps its first items (each cut too).
        return [_cut(v, cap) for v in value[:cap]]
    return value
