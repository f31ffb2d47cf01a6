"""The egress proxy: a sandbox's only way to the internet, by host name, per session policy.

It speaks the two forms of HTTP proxying every common client uses when ``HTTP(S)_PROXY``
points at it (the runner's forwarder relays the connection from the container's loopback):

- ``CONNECT host:port``: a TLS tunnel (``https://`` URLs; pip, git, WebFetch, curl);
- ``GET http://host/path`` (absolute URI): plain HTTP, forwarded with ``Connection: close``.

Each request is checked against the session's :class:`~workers.sandbox.policy.EgressPolicy`
by the name the client asked for, the name is resolved here and every address checked, and
the connection goes to the checked address. A refusal answers ``403`` with a one-line reason
(clients show it as a tunnel or proxy error), is logged, and reported through ``on_denied``
so the worker can emit an ``egress.denied`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import structlog

from broker.sandbox_wire import MAX_PREAMBLE, ROUTE_EGRESS, PreambleError, decode_preamble, splice
from workers.sandbox.policy import EgressDenied, Resolver
from workers.sandbox.registry import Binding, SandboxRegistry

log = structlog.get_logger("agc.egress")

_MAX_HEAD = 64 << 10
_DROP = frozenset({b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive"})


@dataclass(frozen=True, slots=True)
class Denial:
    """One refused destination, as reported to ``on_denied``."""

    session_id: str
    host: str
    port: int
    reason: str
    policy: str
    method: str


DenialSink = Callable[[Denial], None]


class _BadRequest(Exception):
    pass


class EgressProxy:
    """Serve the egress sockets of every sandbox of this worker."""

    def __init__(
        self,
        registry: SandboxRegistry,
        *,
        on_denied: DenialSink,
        resolver: Resolver | None = None,
        connect_timeout: float = 10.0,
        preamble_timeout: float = 10.0,
    ) -> None:
        self.registry = registry
        self._on_denied = on_denied
        self._resolver = resolver or Resolver()
        self._connect_timeout = connect_timeout
        self._preamble_timeout = preamble_timeout

    async def serve(
        self, sandbox: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Handle one proxied request (a tunnel or a plain HTTP exchange) on ``sandbox``."""
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            line = await asyncio.wait_for(reader.readline(), self._preamble_timeout)
            if len(line) > MAX_PREAMBLE or not line.endswith(b"\n"):
                raise PreambleError("preamble missing or too long")
            token, route = decode_preamble(line)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60.0)
            binding = self.registry.authenticate(sandbox, token)
            if binding is None or route != ROUTE_EGRESS:
                log.warning("egress: refused a token", sandbox=sandbox)
                await _answer(writer, 407, "this sandbox is not bound to a session")
                return
            upstream = await self._handle(binding, head, reader, writer)
        except (PreambleError, TimeoutError, asyncio.IncompleteReadError) as exc:
            log.warning("egress: bad connection", sandbox=sandbox, error=str(exc))
        except asyncio.LimitOverrunError:
            await _answer(writer, 431, "request head too large")
        except _BadRequest as exc:
            await _answer(writer, 400, str(exc))
        except (ConnectionError, OSError):
            pass
        finally:
            if upstream is None:
                writer.close()
                with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                    await writer.wait_closed()

    async def _handle(
        self,
        binding: Binding,
        head: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        request_line, _, rest = head.partition(b"\r\n")
        try:
            method, target, version = request_line.decode("latin-1").split(" ")
        except ValueError as exc:
            raise _BadRequest("bad request line") from exc
        url: SplitResult | None = None
        if method == "CONNECT":
            host, port = _authority(target, 443)
        else:
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                raise _BadRequest("a proxy request needs an absolute http:// URL")
            host, port = url.hostname, url.port or 80
        try:
            binding.egress.check_name(host, port)
            candidates = await self._resolver.resolve(host, port)
        except EgressDenied as exc:
            self._deny(binding, method, host, port, str(exc))
            await _answer(writer, 403, f"AgCluster egress denied {host}:{port}: {exc}")
            return None
        upstream = await self._connect(candidates)
        if upstream is None:
            await _answer(writer, 502, f"cannot connect to {host}:{port}")
            return None
        if url is None:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            upstream[1].write(_origin_form(method, url, version, rest, host, port))
        await splice((reader, writer), upstream)
        return upstream

    async def _connect(
        self, candidates: list[tuple[str, int]]
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for addr, port in candidates:
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(addr, port), self._connect_timeout
                )
            except (OSError, TimeoutError):
                continue
        return None

    def _deny(self, binding: Binding, method: str, host: str, port: int, reason: str) -> None:
        log.warning(
            "egress denied",
            session_id=binding.session_id,
            host=host,
            port=port,
            policy=binding.egress.name,
            reason=reason,
        )
        self._on_denied(Denial(binding.session_id, host, port, reason, binding.egress.name, method))


def _authority(target: str, default_port: int) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        host, port = target, str(default_port)
    host = host.strip("[]")
    if not host or int(port) > 65535:
        raise _BadRequest(f"bad CONNECT target {target!r}")
    return host.lower(), int(port)


def _origin_form(
    method: str, url: SplitResult, version: str, rest: bytes, host: str, port: int
) -> bytes:
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    lines = [f"{method} {path} {version}".encode("latin-1")]
    has_host = False
    for line in rest.split(b"\r\n"):
        if not line:
            continue
        name = line.split(b":", 1)[0].strip().lower()
        if name in _DROP:
            continue
        has_host |= name == b"host"
        lines.append(line)
    if not has_host:
        lines.append(f"Host: {host}{'' if port == 80 else f':{port}'}".encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _answer(writer: asyncio.StreamWriter, status: int, message: str) -> None:
    reason = {
        400: "Bad Request",
        403: "Forbidden",
        407: "Proxy Authentication Required",
        431: "Request Header Fields Too Large",
        502: "Bad Gateway",
    }.get(status, "Error")
    body = (message + "\n").encode()
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nx-agc-egress: denied\r\nconnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError, OSError):
        await writer.drain()
