"""The API's error tree and its one mapping to HTTP responses.

Every error body is ``{"error": code, "detail": message, "status_code": N}`` plus, where it
helps, ``errors`` (a list of ``{"field", "message"}``) or other context.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from nats.errors import ConnectionClosedError as NatsConnectionClosed
from nats.errors import NoRespondersError as NatsNoResponders
from nats.errors import NoServersError as NatsNoServers
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import Error as JetStreamError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from broker.retry import is_permanent
from configs.errors import (
    ConfigConflict,
    ConfigError,
    ConfigNotFound,
    InvalidConfig,
    PresetReadOnly,
)

log = structlog.get_logger("agc.api")


class ApiError(Exception):
    """Base of errors the API raises on purpose; subclasses fix the status and code."""

    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        # Response headers, e.g. ``Retry-After`` on a 503.
        self.headers = headers or {}


class BadRequest(ApiError):
    status_code, code = 400, "bad_request"


class Unauthorized(ApiError):
    status_code, code = 401, "unauthorized"


class Forbidden(ApiError):
    status_code, code = 403, "forbidden"


class NotFound(ApiError):
    status_code, code = 404, "not_found"


class Conflict(ApiError):
    status_code, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status_code, code = 413, "payload_too_large"


class Unprocessable(ApiError):
    status_code, code = 422, "invalid"


class BadGateway(ApiError):
    status_code, code = 502, "upstream_failed"


class Unavailable(ApiError):
    status_code, code = 503, "unavailable"


class GatewayTimeout(ApiError):
    status_code, code = 504, "timeout"


def _body(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    # Context first, so it can never overwrite the three fields every client relies on.
    return Response(
        {**extra, "error": code, "detail": detail, "status_code": status},
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def handle_api_error(_: Request[Any, Any, Any], exc: ApiError) -> Response[dict[str, Any]]:
    return _body(exc.status_code, exc.code, exc.detail, exc.headers, **exc.extra)


def handle_config_error(_: Request[Any, Any, Any], exc: ConfigError) -> Response[dict[str, Any]]:
    match exc:
        case InvalidConfig():
            return _body(422, "invalid_config", str(exc), errors=exc.errors)
        case ConfigNotFound():
            return _body(404, "config_not_found", str(exc))
        case ConfigConflict():
            return _body(409, "config_conflict", str(exc))
        case PresetReadOnly():
            return _body(403, "preset_read_only", str(exc))
        case _:
            return _body(400, "config_error", str(exc))


def handle_http_exception(
    request: Request[Any, Any, Any], exc: HTTPException
) -> Response[dict[str, Any]]:
    """Litestar's own errors (routing, body parsing) in our shape."""
    status = exc.status_code
    if isinstance(exc, ValidationException):
        errors = [
            {"field": str(e.get("key") or e.get("source") or ""), "message": str(e.get("message"))}
            for e in (exc.extra if isinstance(exc.extra, list) else [])
            if isinstance(e, dict)
        ]
        return _body(400, "bad_request", _validation_detail(exc), errors=errors)
    code = {
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
    }.get(status, "http_error")
    if isinstance(exc, NotFoundException) and request.url.path.startswith("/api/"):
        return _body(404, code, f"no such endpoint: {request.method} {request.url.path}")
    if isinstance(exc, NotAuthorizedException | PermissionDeniedException):
        return _body(status, code, exc.detail)
    return _body(status, code, exc.detail)


def _validation_detail(exc: ValidationException) -> str:
    detail = exc.detail or "invalid request"
    extra = exc.extra if isinstance(exc.extra, list) else []
    msgs = [str(e.get("message")) for e in extra if isinstance(e, dict) and e.get("message")]
    if msgs:
        return f"invalid request: {'; '.join(msgs)}"
    return detail


def handle_dependency_down(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[dict[str, Any]]:
    """NATS or Redis unreachable (e.g. restarting): 503, and the client may retry."""
    log.warning("dependency unavailable", path=request.url.path, error=type(exc).__name__)
    return _body(
        503, "unavailable", "a platform dependency (NATS or Redis) is unavailable; retry shortly"
    )


def handle_jetstream_error(
    request: Request[Any, Any, Any], exc: JetStreamError
) -> Response[dict[str, Any]]:
    """JetStream without a stream leader (a node restarting) is down for now, not broken."""
    if is_permanent(exc):
        return handle_unexpected(request, exc)
    return handle_dependency_down(request, exc)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error", path=request.url.path, error=type(exc).__name__)
    return _body(
        HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal error; see the API's log"
    )


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    ApiError: handle_api_error,
    ConfigError: handle_config_error,
    HTTPException: handle_http_exception,
    RedisConnectionError: handle_dependency_down,
    RedisTimeoutError: handle_dependency_down,
    NatsConnectionClosed: handle_dependency_down,
    NatsNoServers: handle_dependency_down,
    NatsTimeout: handle_dependency_down,
    NatsNoResponders: handle_dependency_down,
    JetStreamError: handle_jetstream_error,
    Exception: handle_unexpected,
}
