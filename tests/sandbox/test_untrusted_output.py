"""What comes out of a sandbox is bounded: the worker's channel discards over-long lines with
bounded memory, and an event too large for NATS is cut down to fit (or replaced), never lost
silently and never retried forever."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import tracemalloc

import msgspec

from broker.events import TextDelta, decode_event, encode_event
from broker.limits import MAX_LINE_BYTES, RUNNER_EVENT_BYTES, fit_event
from broker.runner_wire import Envelope, encode_line
from workers.channel import RunnerChannel


def frame(payload: bytes, stream: int = 1) -> bytes:
    return struct.pack(">BxxxI", stream, len(payload)) + payload


def envelope(seq: int, text: str) -> bytes:
    event = TextDelta(session_id="s1", turn_id="t1", text=text)
    return encode_line(Envelope(seq=seq, event=msgspec.Raw(encode_event(event)), boot_id="b"))


async def test_a_2mb_line_without_newline_does_not_grow_the_worker() -> None:
    blob = b"x" * (2 << 20)  # made before measuring: the runner's side, not the worker's
    ours, theirs = socket.socketpair()
    # As the Docker provider attaches: a small transport buffer (it pauses reading beyond it).
    reader, writer = await asyncio.open_unix_connection(sock=ours, limit=1 << 16)
    channel = RunnerChannel(reader, writer, session_id="s1")
    discarded: list[int] = []
    channel.on_discard = discarded.append

    def runner_side() -> None:
        theirs.sendall(frame(envelope(1, "before")))
        for i in range(0, len(blob), 32 << 10):
            theirs.sendall(frame(blob[i : i + (32 << 10)]))
        theirs.sendall(frame(b"tail-of-the-long-line\n" + envelope(2, "after")))
        theirs.sendall(frame(b"an" * 5000 + b"\n", stream=2))  # a long stderr line too
        theirs.shutdown(socket.SHUT_WR)

    tracemalloc.start()
    try:
        thread = threading.Thread(target=runner_side)
        thread.start()
        got = [env async for env in channel.envelopes()]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        thread.join()
        theirs.close()
        await channel.close()
    assert [e.seq for e in got] == [1, 2]
    assert [decode_event(bytes(e.event)).text for e in got] == ["before", "after"]  # type: ignore[union-attr]
    assert discarded == [len(blob) + len(b"tail-of-the-long-line")]
    # bounded by the line limit (plus a frame), never by the 2 MB the sandbox wrote
    assert peak < MAX_LINE_BYTES + (512 << 10), peak
    assert max(len(line) for line in channel.stderr_tail().splitlines()) <= 8 << 10


def test_an_oversized_event_is_cut_with_a_marker_and_keeps_its_identity() -> None:
    big = TextDelta(session_id="s1", turn_id="t9", text="y" * (3 << 20), index=2)
    data = fit_event(encode_event(big), RUNNER_EVENT_BYTES)
    assert len(data) <= RUNNER_EVENT_BYTES
    event = decode_event(data)
    assert isinstance(event, TextDelta)
    assert (event.session_id, event.turn_id, event.index) == ("s1", "t9", 2)
    assert "[truncated " in event.text
    assert msgspec.json.decode(data)["truncated"] is True
    small = encode_event(TextDelta(session_id="s1", turn_id="t9", text="ok"))
    assert fit_event(small, 1000) == small


def test_what_cannot_be_cut_becomes_an_error_event() -> None:
    many = msgspec.json.encode(
        {
            "type": "tool.started",
            "session_id": "s1",
            "turn_id": "t1",
            "input": {str(i): i for i in range(200_000)},
        }
    )
    event = decode_event(fit_event(many, 64 << 10))
    assert event.code == "event_too_large"  # type: ignore[union-attr]
    assert (event.session_id, event.turn_id) == ("s1", "t1")  # type: ignore[union-attr]
    assert decode_event(fit_event(b"\xff" * 5000, 1000)).code == "event_too_large"  # type: ignore[union-attr]
