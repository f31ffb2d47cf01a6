"""Browser safety: cross-origin requests, JSON-only bodies, and the headers every response gets.

A web page a user visits must not be able to drive this API through the user's browser:

- A request carrying an ``Origin`` that is neither this API's own nor on ``AGC_CORS_ORIGINS``
  is refused with 403 before any handler runs; a preflight (``OPTIONS`` with
  ``Access-Control-Request-Method``) from an allowed origin is answered here, from any other
  with 403. The allowlist is empty by default, so only the dashboard served by the API
  itself can call it from a browser.
- A body-carrying request under ``/api/`` must be ``application/json`` (uploads:
  ``multipart/form-data``); anything else is 415. A ``text/plain`` POST is what an HTML form
  or a "simple" cross-site ``fetch`` can send without a preflight.
- Every response gets a strict Content-Security-Policy (scripts, styles, fonts and
  connections from this origin only, no framing), ``nosniff`` and a Referrer-Policy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from litestar.types import ASGIApp, Receive

# ASGI scopes and messages as plain mappings: this middleware reads and writes raw headers.
Scope = Any
Message = Any
Send = Any

# What the dashboard needs and nothing more: no inline script, no third-party origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; worker-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The interactive OpenAPI viewers (only when AGC_OPENAPI_VIEWERS is on) load their scripts
# and styles from a CDN and run inline bootstrap code.
VIEWER_CSP = (
    "default-src 'self' https:; script-src 'self' 'unsafe-inline' https:; "
    "style-src 'self' 'unsafe-inline' https:; img-src 'self' data: https:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_TYPES = ("application/json",)
# Routes that take a multipart upload instead of a JSON body.
MULTIPART_SUFFIXES = ("/upload",)
PREFLIGHT_MAX_AGE = b"600"
ALLOWED_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = (
    b"authorization, content-type, accept, last-event-id, idempotency-key, x-operator-token"
)
EXPOSED_HEADERS = b"retry-after, x-turn-id, content-disposition"


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    if length and length.strip() not in ("", "0"):
        return True
    return bool(_header(scope, b"transfer-encoding"))


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type in JSON_TYPES or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def _send_error(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"error": code, "detail": detail, "status_code": status}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"vary", b"Origin"),
                *SECURITY_HEADERS,
                (b"content-security-policy", CSP.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BrowserGuard:
    """ASGI middleware around the whole app: see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        cors_origins: Iterable[str] = (),
        viewer_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.cors_origins = frozenset(o.rstrip("/").lower() for o in cors_origins if o)
        self.viewer_paths = viewer_paths

    def _same_origin(self, scope: Scope, origin: str) -> bool:
        host = _header(scope, b"host").lower()
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        return bool(host) and origin in (f"{scheme}://{host}",)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        path: str = scope["path"]
        origin = _header(scope, b"origin").rstrip("/").lower()
        cross = bool(origin) and not self._same_origin(scope, origin)
        allowed = cross and origin in self.cors_origins
        if cross and not allowed:
            await _send_error(
                send,
                403,
                "cross_origin_refused",
                f"cross-origin request from {origin!r} refused: the origin is not on "
                "AGC_CORS_ORIGINS",
            )
            return
        if allowed and method == "OPTIONS" and _header(scope, b"access-control-request-method"):
            await self._preflight(send, origin)
            return
        if (
            method in BODY_METHODS
            and path.startswith("/api/")
            and (_has_body(scope) or _header(scope, b"content-type"))
        ):
            media = _media_type(_header(scope, b"content-type"))
            multipart = path.endswith(MULTIPART_SUFFIXES) and media == "multipart/form-data"
            if not (_is_json(media) or multipart):
                want = (
                    "multipart/form-data"
                    if path.endswith(MULTIPART_SUFFIXES)
                    else "application/json"
                )
                await _send_error(
                    send,
                    415,
                    "unsupported_media_type",
                    f"this route takes {want}, not {media or 'a body without a content type'}",
                )
                return
        csp = (
            VIEWER_CSP if self.viewer_paths and path.startswith(self.viewer_paths) else CSP
        ).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", ()) if k.lower() not in _CORS_HEADERS
                ]
                have = {k.lower() for k, _ in headers}
                # A route's own policy wins: it is stricter (a served workspace file gets
                # `default-src 'none'`, a sandbox).
                headers += [
                    (k, v)
                    for k, v in (*SECURITY_HEADERS, (b"content-security-policy", csp))
                    if k not in have
                ]
                if allowed:
                    headers += [
                        (b"access-control-allow-origin", origin.encode()),
                        (b"access-control-expose-headers", EXPOSED_HEADERS),
                    ]
                headers.append((b"vary", b"Origin"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _preflight(self, send: Send, origin: str) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    (b"access-control-allow-origin", origin.encode()),
                    (b"access-control-allow-methods", ALLOWED_METHODS),
                    (b"access-control-allow-headers", ALLOWED_HEADERS),
                    (b"access-control-max-age", PREFLIGHT_MAX_AGE),
                    (b"vary", b"Origin"),
                    *SECURITY_HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})


_CORS_HEADERS = frozenset({b"access-control-allow-origin"})


def guard_asgi(app: Any, **options: Any) -> Any:
    """Wrap an ASGI app (the Litestar app) in :class:`BrowserGuard`."""
    return BrowserGuard(app, **options)
