"""Number events, frame them as protocol envelopes, write them to stdout, keep them for replay."""

from __future__ import annotations

import logging
import uuid
from typing import Protocol

import msgspec

from broker.events import Event, encode_event, event_type
from broker.limits import RUNNER_EVENT_BYTES, fit_event
from broker.runner_wire import Envelope, encode_line
from runner.buffer import ReplayBuffer

log = logging.getLogger("runner.emitter")


class LineSink(Protocol):
    def write(self, data: bytes) -> None: ...


class Emitter:
    """The only writer of stdout: one :class:`Envelope` line per event, ``seq`` from 1."""

    def __init__(self, sink: LineSink, buffer: ReplayBuffer, boot_id: str | None = None) -> None:
        self._sink = sink
        self._buffer = buffer
        self.boot_id = boot_id or uuid.uuid4().hex
        self._seq = 0
        self._closed = False

    @property
    def last_seq(self) -> int:
        return self._seq

    @property
    def closed(self) -> bool:
        return self._closed

    def emit(self, event: Event) -> int | None:
        """Send ``event``; return its ``seq`` (None once :meth:`close` was called)."""
        if self._closed:
            # session.stopped promises that no event follows it.
            log.debug("dropping %s after session.stopped", event_type(event))
            return None
        self._seq += 1
        # The worker drops a line over its limit: cut a huge event (a model's giant answer)
        # down here, with a marker, so it arrives shortened rather than not at all.
        data = fit_event(encode_event(event), RUNNER_EVENT_BYTES)
        line = encode_line(Envelope(seq=self._seq, event=msgspec.Raw(data), boot_id=self.boot_id))
        self._buffer.append(self._seq, line)
        self._sink.write(line)
        return self._seq

    def replay(self, after_seq: int) -> int:
        """Re-send every buffered envelope with ``seq > after_seq``; return how many."""
        items = self._buffer.since(after_seq)
        if items:
            self._sink.write(b"".join(line for _, line in items))
        return len(items)

    @property
    def first_buffered_seq(self) -> int | None:
        return self._buffer.first_seq

    def close(self) -> None:
        """Accept no further events (after ``session.stopped``)."""
        self._closed = True
