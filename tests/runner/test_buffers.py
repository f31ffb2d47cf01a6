"""The replay buffer, the emitter's framing and the CLI stderr ring, without a CLI."""

from __future__ import annotations

from broker.events import SessionStopped, TurnStarted, decode_event
from broker.runner_wire import decode_envelope
from runner.buffer import ReplayBuffer
from runner.emitter import Emitter
from runner.stderr_tail import StderrTail


class Sink:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def lines(self) -> list[bytes]:
        return self.data.splitlines()


def test_replay_buffer_returns_newer_items_and_drops_the_oldest() -> None:
    buf = ReplayBuffer(3)
    for seq in range(1, 6):
        buf.append(seq, f"line{seq}".encode())
    assert [s for s, _ in buf.since(0)] == [3, 4, 5]
    assert [s for s, _ in buf.since(3)] == [4, 5]
    assert buf.since(5) == []
    assert buf.since(99) == []
    assert (buf.first_seq, buf.last_seq, len(buf)) == (3, 5, 3)


def test_replay_buffer_is_bounded_by_bytes_but_keeps_the_newest_line() -> None:
    buf = ReplayBuffer(100, max_bytes=25)
    for seq in range(1, 4):
        buf.append(seq, b"x" * 10)
    assert [s for s, _ in buf.since(0)] == [2, 3]
    assert buf.size_bytes == 20
    buf.append(4, b"y" * 100)  # larger than the bound on its own
    assert [s for s, _ in buf.since(0)] == [4]


def test_emitter_numbers_frames_and_replays() -> None:
    sink = Sink()
    emitter = Emitter(sink, ReplayBuffer(10), boot_id="boot-1")
    for i in range(3):
        assert emitter.emit(TurnStarted(session_id="s", turn_id=f"t{i}")) == i + 1
    envelopes = [decode_envelope(line) for line in sink.lines()]
    assert [(e.seq, e.boot_id) for e in envelopes] == [(1, "boot-1"), (2, "boot-1"), (3, "boot-1")]
    assert decode_event(bytes(envelopes[2].event)) == TurnStarted(
        session_id="s", turn_id="t2", ts=decode_event(bytes(envelopes[2].event)).ts
    )
    before = sink.lines()
    assert emitter.replay(1) == 2
    assert sink.lines()[3:] == before[1:]


def test_emitter_sends_nothing_after_close() -> None:
    sink = Sink()
    emitter = Emitter(sink, ReplayBuffer(10))
    emitter.emit(SessionStopped(session_id="s"))
    emitter.close()
    assert emitter.emit(TurnStarted(session_id="s", turn_id="late")) is None
    assert len(sink.lines()) == 1


def test_stderr_tail_since_mark_and_bounds() -> None:
    tail = StderrTail(max_lines=3)
    tail("early\n")
    mark = tail.mark
    for i in range(5):
        tail(f"line {i}")
    tail("   ")
    assert tail.since(mark) == "line 2\nline 3\nline 4"
    assert tail.tail(2) == "line 3\nline 4"
    assert tail.since(tail.mark) == ""
    assert tail.since(0, max_chars=6) == "…line 4"
