"""The worker's side of the runner's stdio: commands in, envelopes out.

Docker multiplexes a non-TTY container's stdout and stderr on the attach socket in frames
(1 byte stream id, 3 zero bytes, 4 bytes big-endian length, payload). Stdout carries only
protocol lines; stderr is the runner's log, passed to ours.

Everything here comes out of a sandbox and is untrusted: a stdout line longer than
``max_line`` is discarded up to its next newline (the buffer never grows past the limit;
``on_discard`` hears of it once per line, the log once per channel), stderr lines are cut,
and a frame header announcing an absurd size ends the channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable

import structlog

from broker.limits import MAX_LINE_BYTES
from broker.runner_wire import Envelope, RunnerCommand, decode_envelope, encode_line
from workers.errors import RunnerGone

log = structlog.get_logger("agc.channel")

_HEADER = struct.Struct(">BxxxI")
_STDOUT, _STDERR = 1, 2
# dockerd frames what it copies in small chunks; a header beyond this is not a real frame.
_MAX_FRAME = 16 << 20
_MAX_STDERR_LINE = 8 << 10


class RunnerChannel:
    """JSON-lines conversation with one runner over an attached socket."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        session_id: str,
        max_line: int = MAX_LINE_BYTES,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._session_id = session_id
        self._write_lock = asyncio.Lock()
        self._stderr_tail: list[str] = []
        self.max_line = max_line
        # Told the size of each discarded over-long line (the session emits an error event).
        self.on_discard: Callable[[int], None] | None = None
        self._logged_discard = False

    async def send(self, command: RunnerCommand) -> None:
        """Write one command line; raises :class:`RunnerGone` if the channel is closed."""
        async with self._write_lock:
            try:
                self._writer.write(encode_line(command))
                await self._writer.drain()
            except (ConnectionError, RuntimeError) as exc:
                raise RunnerGone(f"runner channel closed: {exc}") from exc

    def stderr_tail(self) -> str:
        """The last lines the runner wrote to stderr (shown when a launch fails)."""
        return "\n".join(self._stderr_tail[-40:])

    async def envelopes(self) -> AsyncIterator[Envelope]:
        """Yield envelopes until the channel closes."""
        out_buf = bytearray()
        err_buf = bytearray()
        # Bytes of the over-long stdout line being skipped (-1: not skipping).
        skipped = -1
        while True:
            try:
                header = await self._reader.readexactly(_HEADER.size)
                stream, size = _HEADER.unpack(header)
                if size > _MAX_FRAME:
                    log.warning("bad frame from the runner", session_id=self._session_id, size=size)
                    return
                payload = await self._reader.readexactly(size)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if stream == _STDOUT:
                start = 0
                if skipped >= 0:
                    nl = payload.find(b"\n")
                    if nl < 0:
                        skipped += len(payload)
                        continue
                    self._discarded(skipped + nl)
                    skipped, start = -1, nl + 1
                out_buf += memoryview(payload)[start:]
                while (nl := out_buf.find(b"\n")) >= 0:
                    line = bytes(out_buf[:nl])
                    del out_buf[: nl + 1]
                    if len(line) > self.max_line:
                        self._discarded(len(line))
                        continue
                    if not line.strip():
                        continue
                    try:
                        yield decode_envelope(line)
                    except ValueError:
                        log.warning(
                            "runner wrote a non-protocol line",
                            session_id=self._session_id,
                            line=line[:200].decode(errors="replace"),
                        )
                if len(out_buf) > self.max_line:
                    skipped = len(out_buf)
                    out_buf.clear()
            elif stream == _STDERR:
                err_buf += payload
                while (nl := err_buf.find(b"\n")) >= 0 or len(err_buf) > _MAX_STDERR_LINE:
                    end = nl if 0 <= nl <= _MAX_STDERR_LINE else _MAX_STDERR_LINE
                    text = err_buf[:end].decode(errors="replace")
                    del err_buf[: end + 1 if end == nl else end]
                    self._stderr_tail.append(text)
                    del self._stderr_tail[:-200]
                    log.debug("runner", session_id=self._session_id, line=text)

    def _discarded(self, size: int) -> None:
        if not self._logged_discard:
            self._logged_discard = True
            log.warning(
                "runner wrote a line over the limit; discarding it (logged once per channel)",
                session_id=self._session_id,
                size=size,
                limit=self.max_line,
            )
        if self.on_discard is not None:
            self.on_discard(size)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
