"""Non-blocking access to the process's stdin and stdout for the JSON-lines protocol.

Both ends use a daemon thread doing plain ``os.read``/``os.write`` on the file descriptor:
the event loop never blocks on a slow or full pipe (``docker attach`` may stall), no
``O_NONBLOCK`` flag leaks onto descriptors shared with other processes, and no buffered-IO
lock is held by a thread at interpreter exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
from collections.abc import AsyncIterator

log = logging.getLogger("runner.stdio")

_READ_CHUNK = 1 << 16


class StdinLines:
    """Read lines from a file descriptor on a daemon thread and hand them to the loop."""

    def __init__(self, fd: int = 0, *, read: bytes = b"", eof: bool = False) -> None:
        """``read``: what was read from ``fd`` before (:mod:`runner.early`), ``eof`` if it ended."""
        self._fd = fd
        self._read, self._eof = read, eof
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the reader thread (call from inside the running loop)."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="stdin-reader", daemon=True)
        self._thread.start()

    async def lines(self) -> AsyncIterator[bytes]:
        """Yield each line without its newline; return at EOF."""
        while True:
            item = await self._queue.get()
            if item is None:
                return
            yield item

    def _put(self, item: bytes | None) -> bool:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the process is exiting
            return False
        return True

    def _run(self) -> None:
        pending = bytearray()
        while True:
            if self._read:  # read before this thread started: those bytes come first
                chunk, self._read = self._read, b""
            elif self._eof:
                chunk = b""
            else:
                chunk = self._read_chunk()
            if not chunk:
                if pending:
                    self._put(bytes(pending))
                self._put(None)
                return
            pending += chunk
            start = 0
            while (end := pending.find(b"\n", start)) != -1:
                if not self._put(bytes(pending[start:end])):
                    return
                start = end + 1
            del pending[:start]

    def _read_chunk(self) -> bytes:
        while True:
            try:
                return os.read(self._fd, _READ_CHUNK)
            except InterruptedError:
                continue
            except OSError as exc:
                log.warning("stdin read failed: %s", exc)
                return b""


class StdoutWriter:
    """Write protocol lines to a file descriptor from a daemon thread, in order."""

    def __init__(self, fd: int = 1) -> None:
        self._fd = fd
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._broken = False
        self._thread = threading.Thread(target=self._run, name="stdout-writer", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        """Queue ``data`` (one or more complete lines); never blocks."""
        self._queue.put(data)

    def close(self, timeout: float = 5.0) -> None:
        """Flush what is queued and stop the thread (bounded by ``timeout`` seconds)."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            # Coalesce what is already queued: one syscall for a burst of deltas.
            with contextlib.suppress(queue.Empty):
                while len(batch) < 256:
                    nxt = self._queue.get_nowait()
                    if nxt is None:
                        self._write(b"".join(batch))
                        return
                    batch.append(nxt)
            self._write(b"".join(batch))

    def _write(self, data: bytes) -> None:
        if self._broken:
            return
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except InterruptedError:
                continue
            except OSError as exc:
                # Nobody reads stdout any more: keep running (a worker may re-attach and
                # replay from the buffer), but stop trying to write.
                log.warning("stdout write failed, dropping output: %s", exc)
                self._broken = True
                return
            view = view[written:]
