"""Session access: the Bearer key used at launch opens that session's routes, nothing else."""

from __future__ import annotations

from typing import Any

from litestar import Request

from api.errors import Forbidden, NotFound, Unauthorized
from api.services import Services
from broker import subjects
from broker.state import SessionRecord


def bearer_key(request: Request[Any, Any, Any]) -> str:
    """The API key from ``Authorization: Bearer …``; 401 when absent or malformed."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing API key: send `Authorization: Bearer <the key used at launch>`")
    return token.strip()


async def authorize(
    request: Request[Any, Any, Any], services: Services, session_id: str
) -> SessionRecord:
    """Return the session if the caller's key opens it: 401 no key, 404 unknown, 403 other key."""
    key = bearer_key(request)
    if not subjects.SESSION_ID_RE.fullmatch(session_id):
        raise NotFound(f"no session {session_id!r}")
    record = await services.store.get(session_id)
    if record is None:
        raise NotFound(f"no session {session_id!r}")
    if not services.sealer.key_matches(key, record.key_hash):
        raise Forbidden("this API key does not own the session")
    return record
