"""The worker's side of the runner's stdio: commands in, envelopes out.

Docker multiplexes a non-TTY container's stdout and stderr on the attach socket in frames
(1 byte stream id, 3 zero bytes, 4 bytes big-endian length, payload). Stdout carries only
protocol lines; stderr is the runner's log, passed to ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator

import structlog

from broker.runner_wire import Envelope, RunnerCommand, decode_envelope, encode_line
from workers.errors import RunnerGone

log = structlog.get_logger("agc.channel")

_HEADER = struct.Struct(">BxxxI")
_STDOUT, _STDERR = 1, 2


class RunnerChannel:
    """JSON-lines conversation with one runner over an attached socket."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, session_id: str
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._session_id = session_id
        self._write_lock = asyncio.Lock()
        self._stderr_tail: list[str] = []

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
        while True:
            try:
                header = await self._reader.readexactly(_HEADER.size)
                stream, size = _HEADER.unpack(header)
                payload = await self._reader.readexactly(size)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if stream == _STDOUT:
                out_buf += payload
                while (nl := out_buf.find(b"\n")) >= 0:
                    line = bytes(out_buf[:nl])
                    del out_buf[: nl + 1]
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
            elif stream == _STDERR:
                err_buf += payload
                while (nl := err_buf.find(b"\n")) >= 0:
                    text = err_buf[:nl].decode(errors="replace")
                    del err_buf[: nl + 1]
                    self._stderr_tail.append(text)
                    del self._stderr_tail[:-200]
                    log.debug("runner", session_id=self._session_id, line=text)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
