"""What the file routes do: ask the session's worker, follow the bytes it streams back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import anyio
import msgspec
import structlog
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from api.errors import (
    ApiError,
    BadGateway,
    BadRequest,
    Conflict,
    Forbidden,
    GatewayTimeout,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)
from api.services import Services
from broker import subjects
from broker.blobs import BlobError, BlobReader, BlobRef
from broker.state import TERMINAL_STATUSES, SessionRecord

log = structlog.get_logger("agc.api.files")

RPC_TIMEOUT = 30.0


class InsufficientStorage(ApiError):
    status_code, code = 507, "insufficient_storage"


class Reply(msgspec.Struct, kw_only=True):
    """The parts of a worker's reply the API acts on (everything else is passed through)."""

    error: str | None = None
    detail: str = ""
    status: int = 0
    existing: list[str] | None = None
    blob: BlobRef | None = None
    type: str = ""
    path: str = ""
    name: str = ""
    size: int | None = None
    mime: str = "application/octet-stream"


_reply = msgspec.json.Decoder(Reply)
_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    502: BadGateway,
    507: InsufficientStorage,
}


def _raise_for(reply: Reply) -> None:
    if reply.error is None:
        return
    cls = _STATUS.get(reply.status)
    if cls is None:
        log.warning("worker failed a file operation", error=reply.error, detail=reply.detail)
        raise BadGateway(f"the session's worker failed: {reply.detail}")
    extra: dict[str, Any] = {}
    if reply.existing is not None:
        extra["existing"] = reply.existing
    exc = cls(reply.detail, **extra)
    exc.code = reply.error  # the worker's precise code (bad_path, forbidden_path, exists…)
    raise exc


def ensure_workspace(record: SessionRecord) -> None:
    """A stopped session's volume is gone; one still starting has no worker answering yet."""
    if record.status in TERMINAL_STATUSES or record.status == "stopping":
        raise Conflict(
            f"session {record.session_id} is {record.status}; its workspace is gone",
            session_status=record.status,
        )


async def call(
    services: Services,
    record: SessionRecord,
    op: str,
    request: msgspec.Struct,
    *,
    timeout: float = RPC_TIMEOUT,
) -> tuple[Reply, bytes]:
    """Send one file operation to the session's owner; its decoded head and raw bytes."""
    ensure_workspace(record)
    try:
        msg = await services.nc.request(
            subjects.files_rpc(record.session_id, op),
            msgspec.json.encode(request),
            timeout=timeout,
        )
    except NoRespondersError as exc:
        raise Unavailable("the session's worker is not answering; retry in a moment") from exc
    except (NatsTimeout, TimeoutError) as exc:
        raise GatewayTimeout(f"the session's worker did not answer within {timeout:.0f} s") from exc
    try:
        reply = _reply.decode(msg.data)
    except msgspec.DecodeError as exc:
        raise BadGateway("the session's worker sent an unreadable reply") from exc
    _raise_for(reply)
    return reply, msg.data


async def _close_quietly(reader: BlobReader) -> None:
    # Runs when the client went away too: a cancelled task must still drop the consumer and
    # the object, so the cleanup is shielded (and bounded).
    with anyio.CancelScope(shield=True), anyio.move_on_after(10):
        await reader.close()


async def follow(services: Services, ref: BlobRef) -> AsyncIterator[bytes]:
    """Open the object a worker is writing and return its bytes as they arrive.

    The first chunk is awaited before returning, so a worker that fails at once still gets
    the client a proper error status; a failure later can only cut the response short
    (the client sees an incomplete body, never a silently truncated file).
    """
    reader = await BlobReader(services.nc, services.js, ref).open()
    chunks = reader.chunks_iter()
    try:
        first = await anext(chunks, None)
    except BlobError as exc:
        await _close_quietly(reader)
        raise BadGateway(f"the transfer failed: {exc}") from exc
    except BaseException:
        await _close_quietly(reader)
        raise

    async def stream() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                yield first
            async for chunk in chunks:
                yield chunk
        except BlobError as exc:
            log.warning("transfer failed mid-stream", object=ref.name, error=str(exc))
            raise
        finally:
            with contextlib.suppress(Exception):
                await chunks.aclose()
            await _close_quietly(reader)

    return stream()


def download_url(session_id: str, path: str) -> str:
    return f"/api/files/{session_id}/{quote(path)}/download"


def content_disposition(kind: str, filename: str) -> str:
    """``attachment``/``inline`` with an ASCII fallback and the exact UTF-8 name (RFC 6266)."""
    ascii_name = (
        "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\;' else "_" for ch in filename)
        or "download"
    )
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
