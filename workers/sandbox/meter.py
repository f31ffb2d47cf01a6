"""Read token usage out of a Messages API response as it streams past, without buffering it.

A streamed response reports usage twice: ``message_start`` (input and cache tokens, an initial
output count) and ``message_delta`` (cumulative totals, at least ``output_tokens``). The meter
keeps the running total of the response and hands out only what is new since it last
reported, so a caller can record usage the moment it is known (before the client sees the
end of the stream) and again at the end without counting anything twice.
"""

from __future__ import annotations

from typing import Any

import msgspec

from workers.sandbox.pricing import ModelUsage

# An SSE line longer than this is not a usage event; stop collecting it (bounds memory).
_MAX_LINE = 1 << 20


class _UsageFields(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _Message(msgspec.Struct):
    model: str = ""
    usage: _UsageFields | None = None


class _Event(msgspec.Struct):
    type: str = ""
    message: _Message | None = None
    usage: _UsageFields | None = None


_event = msgspec.json.Decoder(_Event)
_message = msgspec.json.Decoder(_Message)


class UsageMeter:
    """Feed response bytes with :meth:`feed`; :meth:`take` returns usage not yet taken."""

    def __init__(self, *, streaming: bool) -> None:
        self.streaming = streaming
        self.model = ""
        self._total = ModelUsage()
        self._taken = ModelUsage()
        self._line = bytearray()
        self._skipping = False
        self._body = bytearray()

    def feed(self, chunk: bytes) -> bool:
        """Consume a piece of the response; return True when usage changed."""
        if not self.streaming:
            if len(self._body) + len(chunk) <= _MAX_LINE:
                self._body += chunk
            return False
        changed = False
        start = 0
        while (nl := chunk.find(b"\n", start)) != -1:
            piece = chunk[start:nl]
            start = nl + 1
            if self._skipping:
                self._skipping = False
                self._line.clear()
                continue
            self._line += piece
            changed |= self._on_line(bytes(self._line))
            self._line.clear()
        rest = chunk[start:]
        if not self._skipping:
            self._line += rest
            if len(self._line) > _MAX_LINE:
                self._line.clear()
                self._skipping = True
        return changed

    def finish(self) -> None:
        """The response ended: account for a non-streamed body."""
        if not self.streaming and self._body:
            try:
                msg = _message.decode(bytes(self._body))
            except (msgspec.DecodeError, msgspec.ValidationError):
                return
            self.model = msg.model or self.model
            if msg.usage is not None:
                self._merge(msg.usage)

    def take(self) -> ModelUsage:
        """Return the usage counted since the last call (zero if nothing new)."""
        new = self._total.minus(self._taken)
        self._taken = self._total
        return new

    @property
    def total(self) -> ModelUsage:
        return self._total

    def _on_line(self, line: bytes) -> bool:
        if not line.startswith(b"data:"):
            return False
        data = line[5:].strip()
        # Cheap filter: only two event types carry usage.
        if b"message_start" not in data and b"message_delta" not in data:
            return False
        try:
            event = _event.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False
        if event.type == "message_start" and event.message is not None:
            self.model = event.message.model or self.model
            if event.message.usage is not None:
                self._merge(event.message.usage)
                return True
        elif event.type == "message_delta" and event.usage is not None:
            self._merge(event.usage)
            return True
        return False

    def _merge(self, fields: _UsageFields) -> None:
        # Values in a later event are cumulative totals for the response: they replace.
        current: dict[str, Any] = msgspec.structs.asdict(self._total)
        for name, value in msgspec.structs.asdict(fields).items():
            if isinstance(value, int) and value >= 0:
                current[name] = value
        self._total = ModelUsage(**current)
