"""The model gateway: the only place a session's model key is used, and where usage is counted.

It serves HTTP/1.1 (h11) on a sandbox's ``gw.sock`` after the connection's preamble
(:mod:`broker.sandbox_wire`) and forwards each request upstream (httpx):

- route ``model``: every path and header the CLI sends (``/v1/messages``, ``count_tokens``,
  ``anthropic-beta``, ...) to the operator's ``ANTHROPIC_BASE_URL`` (default
  ``https://api.anthropic.com``), with the token the CLI holds swapped for the session's real
  key. The response streams back chunk by chunk as it arrives; a :class:`UsageMeter` reads
  usage out of it on the way and reports it the moment it is known;
- route ``mcp:<name>``: a remote MCP server of the session's config, its headers (the
  credentials) added here, its address checked like the egress proxy's.

Requests are refused with the Messages API's own error shape: 401 when the sandbox is not
bound to a session or the token is not its session's, 403 for an MCP server the session
may not reach, 413 for a body over ``max_body``, 502 when upstream cannot be reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import h11
import httpx
import structlog

from broker.sandbox_wire import (
    MAX_PREAMBLE,
    MCP_PREFIX,
    ROUTE_MODEL,
    PreambleError,
    decode_preamble,
)
from workers.sandbox.meter import UsageMeter
from workers.sandbox.policy import EgressDenied, Resolver
from workers.sandbox.pricing import ModelUsage
from workers.sandbox.registry import Binding, McpRoute, SandboxRegistry

log = structlog.get_logger("agc.gateway")

DEFAULT_UPSTREAM = "https://api.anthropic.com"
# Headers that describe one hop, not the message (RFC 9110 7.6.1), plus those set here.
_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)
_CREDENTIALS = frozenset({b"x-api-key", b"authorization"})

# (session id, model, new usage) -> None; called on the event loop, must not block.
UsageSink = Callable[[str, str, ModelUsage], None]


class _BodyTooLarge(Exception):
    pass


class Gateway:
    """Serve model and remote-MCP requests for every bound sandbox of this worker."""

    def __init__(
        self,
        registry: SandboxRegistry,
        *,
        on_usage: UsageSink,
        upstream: str = "",
        resolver: Resolver | None = None,
        max_body: int = 32 << 20,
        preamble_timeout: float = 10.0,
    ) -> None:
        self.registry = registry
        self.upstream = (upstream or DEFAULT_UPSTREAM).rstrip("/")
        self._on_usage = on_usage
        self._resolver = resolver or Resolver()
        self._max_body = max_body
        self._preamble_timeout = preamble_timeout
        # The operator's model API: their environment's proxy settings apply.
        self._model = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=15.0, read=600.0, write=60.0, pool=30.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            follow_redirects=False,
        )
        # Remote MCP servers: reached at the address checked here, never through a proxy;
        # SSE streams may be quiet for a long time.
        self._mcp = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=15.0, read=None, write=60.0, pool=30.0),
            follow_redirects=False,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._model.aclose()
        await self._mcp.aclose()

    async def serve(
        self, sandbox: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Handle one connection on ``sandbox``'s gateway socket until it closes."""
        try:
            token, route = await self._open(sandbox, reader)
            await _Connection(self, sandbox, token, route, reader, writer).run()
        except (PreambleError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            log.warning("gateway: bad connection", sandbox=sandbox, error=str(exc))
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                await writer.wait_closed()

    async def _open(self, sandbox: str, reader: asyncio.StreamReader) -> tuple[str, str]:
        line = await asyncio.wait_for(reader.readline(), self._preamble_timeout)
        if len(line) > MAX_PREAMBLE or not line.endswith(b"\n"):
            raise PreambleError("preamble missing or too long")
        return decode_preamble(line)

    def record(self, binding: Binding, meter: UsageMeter) -> None:
        usage = meter.take()
        if usage.is_zero():
            return
        self._on_usage(binding.session_id, meter.model or "unknown", usage)


class _Connection:
    """One client connection: HTTP/1.1 requests in order, each forwarded upstream."""

    def __init__(
        self,
        gw: Gateway,
        sandbox: str,
        token: str,
        route: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.gw = gw
        self.sandbox = sandbox
        self.token = token
        self.route = route
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=64 << 10)

    async def run(self) -> None:
        while True:
            try:
                event = await self._next()
            except h11.RemoteProtocolError as exc:
                await self._error(400, "invalid_request_error", f"bad HTTP request: {exc}")
                return
            if not isinstance(event, h11.Request):
                return  # ConnectionClosed (or a protocol state with nothing to do)
            try:
                body = await self._body()
            except _BodyTooLarge:
                await self._error(413, "request_too_large", "request body too large")
                return
            await self._handle(event, body)
            if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
                return
            self.h11.start_next_cycle()

    async def _next(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.h11.receive_data(await self.reader.read(1 << 16))

    async def _body(self) -> bytes:
        body = bytearray()
        size = 0
        while True:
            event = await self._next()
            if isinstance(event, h11.Data):
                size += len(event.data)
                # Past the limit the rest is read and dropped (memory stays bounded), so
                # the client gets its 413 instead of a reset in the middle of sending.
                if size <= self.gw._max_body:
                    body += event.data
                elif size > 8 * self.gw._max_body:
                    raise h11.RemoteProtocolError("request body far too large")
            elif isinstance(event, h11.EndOfMessage):
                if size > self.gw._max_body:
                    raise _BodyTooLarge
                return bytes(body)
            else:
                raise h11.RemoteProtocolError("request ended early")

    async def _send(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def _error(self, status: int, kind: str, message: str) -> None:
        if self.h11.our_state is not h11.SEND_RESPONSE:
            return
        body = json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
        with contextlib.suppress(h11.LocalProtocolError):
            await self._send(
                h11.Response(
                    status_code=status,
                    headers=[
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"x-agc-gateway", b"refused"),
                    ],
                )
            )
            await self._send(h11.Data(data=body))
            await self._send(h11.EndOfMessage())

    async def _handle(self, request: h11.Request, body: bytes) -> None:
        # Checked per request, not per connection: an unbound sandbox's token stops working
        # at once, also on a kept-alive connection.
        binding = self.gw.registry.authenticate(self.sandbox, self.token)
        if binding is None:
            log.warning("gateway: refused a token", sandbox=self.sandbox, route=self.route)
            await self._error(
                401,
                "authentication_error",
                "this sandbox is not bound to a session (or its session has ended)",
            )
            return
        target = request.target.decode("latin-1")
        if not target.startswith("/"):
            # absolute-form: only its path and query mean anything here
            parts = urlsplit(target)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if self.route == ROUTE_MODEL:
            url = self.gw.upstream + target
            headers = _forward_headers(request.headers)
            headers.append(_auth_header(binding.api_key))
            await self._forward(self.gw._model, request, url, headers, body, binding, target)
            return
        name = self.route.removeprefix(MCP_PREFIX)
        route = binding.mcp.get(name) if binding.egress.allows_mcp else None
        if route is None:
            await self._error(
                403, "permission_error", f"MCP server {name!r} is not reachable from here"
            )
            return
        try:
            url, extensions, host_header = await self._mcp_target(route, target)
        except EgressDenied as exc:
            log.warning("gateway: MCP destination refused", sandbox=self.sandbox, reason=str(exc))
            await self._error(403, "permission_error", str(exc))
            return
        headers = _forward_headers(request.headers)
        headers.append((b"host", host_header.encode()))
        headers.extend((k.encode(), v.encode()) for k, v in route.headers.items())
        await self._forward(self.gw._mcp, request, url, headers, body, None, target, extensions)

    async def _mcp_target(self, route: McpRoute, target: str) -> tuple[str, dict[str, Any], str]:
        real = urlsplit(route.url)
        host = real.hostname or ""
        port = real.port or (443 if real.scheme == "https" else 80)
        addr, addr_port = (await self.gw._resolver.resolve(host, port))[0]
        path, _, query = target.partition("?")
        if path == (real.path or "/") and not query:
            query = real.query
        ip_host = f"[{addr}]" if ":" in addr else addr
        url = urlunsplit((real.scheme, f"{ip_host}:{addr_port}", path, query, ""))
        default_port = (real.scheme == "https" and port == 443) or port == 80
        host_header = host if default_port else f"{host}:{port}"
        # Connect to the checked address, but speak TLS to the name it was checked for.
        return url, {"sni_hostname": host}, host_header

    async def _forward(
        self,
        client: httpx.AsyncClient,
        request: h11.Request,
        url: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        metered: Binding | None,
        target: str,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        upstream = client.build_request(
            request.method.decode(), url, headers=headers, content=body, extensions=extensions
        )
        try:
            response = await client.send(upstream, stream=True)
        except httpx.HTTPError as exc:
            log.warning("gateway: upstream failed", sandbox=self.sandbox, error=str(exc))
            await self._error(502, "api_error", f"the gateway cannot reach upstream: {exc}")
            return
        meter: UsageMeter | None = None
        path = target.split("?", 1)[0]
        if metered is not None and path.endswith("/messages"):
            ctype = response.headers.get("content-type", "")
            meter = UsageMeter(streaming=ctype.startswith("text/event-stream"))
        try:
            await self._send(
                h11.Response(
                    status_code=response.status_code,
                    headers=[
                        (k, v)
                        for k, v in response.headers.raw
                        if k.lower() not in _HOP or k.lower() == b"content-length"
                    ],
                )
            )
            async for chunk in response.aiter_raw():
                # Usage is counted before the client sees the chunk that carries it, so
                # the turn that chunk ends is never reported before its usage is known.
                if meter is not None and meter.feed(chunk) and metered is not None:
                    self.gw.record(metered, meter)
                await self._send(h11.Data(data=chunk))
            await self._send(h11.EndOfMessage())
        finally:
            await response.aclose()
            if meter is not None and metered is not None:
                meter.finish()
                self.gw.record(metered, meter)


def _forward_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    headers = [
        (k, v)
        for k, v in raw
        if k not in _HOP and k not in _CREDENTIALS and k != b"accept-encoding"
    ]
    # Identity, so the meter can read the stream (and nothing is decoded twice).
    headers.append((b"accept-encoding", b"identity"))
    return headers


def _auth_header(key: str) -> tuple[bytes, bytes]:
    # An OAuth token (Claude subscription) goes in Authorization, an API key in x-api-key.
    if key.startswith("sk-ant-oat"):
        return (b"authorization", f"Bearer {key}".encode())
    return (b"x-api-key", key.encode())
