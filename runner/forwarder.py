"""The sandbox's way out: listeners on the container's loopback relayed to the mounted sockets.

A container has ``--network none``; the worker serves a model gateway and an egress proxy on
unix sockets mounted at ``/run/agc`` (:mod:`broker.sandbox_wire`), reachable only by this
process (uid 0; the agent's uid 1000 cannot open the directory). The CLI and its tools need
HTTP URLs, so the runner listens on ``127.0.0.1`` (ephemeral ports) and relays each TCP
connection to a fresh socket connection, after writing the preamble that carries the
session's token. The token stays in this process: the agent never sees it, and a raw byte
relay adds no buffering to a streamed response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from pathlib import Path

from broker.sandbox_wire import encode_preamble, splice

log = logging.getLogger("runner.forwarder")


def listen() -> socket.socket:
    """A listening socket on 127.0.0.1 (an ephemeral port), made before any event loop.

    Connections wait in its backlog until :meth:`Forwarder.start` serves it: the CLI can be
    given the port before the runner's loop runs (:mod:`runner.early`).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(100)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


class Forwarder:
    """One loopback listener relaying to one unix socket with one preamble."""

    def __init__(
        self, socket_path: Path, token: str, route: str, listener: socket.socket | None = None
    ) -> None:
        """``listener``: a socket already listening on 127.0.0.1 (:func:`listen`)."""
        self.socket_path = socket_path
        self._listener = listener
        self.route = route
        # No token yet (a warm-pool runner before its session): refuse here, see set_token.
        self._preamble = encode_preamble(token, route) if token else b""
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self.port = 0

    def set_token(self, token: str) -> None:
        """Carry ``token`` from now on (a pre-started sandbox bound to its session)."""
        self._preamble = encode_preamble(token, self.route)

    async def start(self) -> int:
        """Listen on 127.0.0.1 (an ephemeral port, or the listener given); return the port."""
        if self._listener is not None:
            sock, self._listener = self._listener, None
            self._server = await asyncio.start_server(self._relay, sock=sock)
        else:
            self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
            task.add_done_callback(self._conns.discard)
        # Cancelled by close(): end quietly (asyncio reports a cancelled connection callback).
        with contextlib.suppress(asyncio.CancelledError):
            await self._relay_one(reader, writer)

    async def _relay_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._preamble:
            writer.write(
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
                b"content-length: 29\r\nconnection: close\r\n\r\nno session is bound here yet\n"
            )
            with contextlib.suppress(ConnectionError, OSError):
                await writer.drain()
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(str(self.socket_path))
        except OSError as exc:
            log.warning("%s: cannot reach %s: %s", self.route, self.socket_path, exc)
            writer.write(
                b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: 36\r\n"
                b"connection: close\r\n\r\nthe sandbox's gateway is unreachable\n"
            )
            with contextlib.suppress(ConnectionError, OSError):
                await writer.drain()
            writer.close()
            return
        up_writer.write(self._preamble)
        await splice((reader, writer), (up_reader, up_writer))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
