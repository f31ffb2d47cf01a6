"""The first line a sandbox's runner sends on the gateway and egress sockets.

A sandbox reaches the outside only through two unix sockets that its worker serves in a
directory mounted at ``/run/agc`` (``gw.sock``: the model gateway and remote MCP servers;
``egress.sock``: the egress proxy). The runner's forwarder opens one socket connection per
TCP connection the CLI (or a tool) makes to it on the container's loopback, and writes this
preamble before the client's own bytes::

    AGC-SANDBOX/1 <token> <route>\\n

``token`` is the per-session token from the runner's ``init`` (it never reaches the agent's
uid); ``route`` is ``model``, ``mcp:<server name>`` or ``egress``. What follows is plain
HTTP/1.1 from the client. Both ends import this module: the runner (in the agent image) and
the worker; it depends on the standard library alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import re

MAGIC = "AGC-SANDBOX/1"
# Inside the container: where the worker's per-sandbox directory is mounted.
MOUNT = "/run/agc"
GATEWAY_SOCKET = "gw.sock"
EGRESS_SOCKET = "egress.sock"
ROUTE_MODEL = "model"
ROUTE_EGRESS = "egress"
MCP_PREFIX = "mcp:"
# A preamble is short; anything longer is not one (bounds what a reader buffers).
MAX_PREAMBLE = 512

_TOKEN = re.compile(r"[A-Za-z0-9_\-]{16,128}")
_ROUTE = re.compile(r"model|egress|mcp:[A-Za-z0-9_\-]{1,64}")


class PreambleError(ValueError):
    """The first line is not a valid preamble."""


def encode_preamble(token: str, route: str) -> bytes:
    """Return the preamble line for ``token`` and ``route`` (newline included)."""
    if not _TOKEN.fullmatch(token) or not _ROUTE.fullmatch(route):
        raise PreambleError("bad token or route")
    return f"{MAGIC} {token} {route}\n".encode("ascii")


def decode_preamble(line: bytes) -> tuple[str, str]:
    """Return ``(token, route)`` from a preamble line; raise :class:`PreambleError`."""
    try:
        magic, token, route = line.decode("ascii").strip().split(" ")
    except (UnicodeDecodeError, ValueError) as exc:
        raise PreambleError("not a sandbox preamble") from exc
    if magic != MAGIC or not _TOKEN.fullmatch(token) or not _ROUTE.fullmatch(route):
        raise PreambleError("not a sandbox preamble")
    return token, route


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` until EOF or an error, then half-close ``writer``.

    Chunks go out as they arrive (no buffering beyond one read), which is what keeps a
    streamed model response as fast through a forwarder as without it.
    """
    try:
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError, RuntimeError):
        pass


async def splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    *,
    linger: float = 60.0,
) -> None:
    """Copy both ways between two connections until both directions end; close both.

    Once one direction has ended, the other gets ``linger`` seconds to finish: a peer that
    keeps its half open forever must not pin the connection.
    """
    tasks = {asyncio.ensure_future(pipe(a[0], b[1])), asyncio.ensure_future(pipe(b[0], a[1]))}
    try:
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            await asyncio.wait(pending, timeout=linger)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, w in (a, b):
            w.close()
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                await w.wait_closed()
