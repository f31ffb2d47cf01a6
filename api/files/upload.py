"""Receive a multipart upload as a stream, straight into the object store.

Litestar's own multipart support reads the whole body (every file) into memory first; a
50 MB upload would cost 50 MB of API memory per request. Instead the body is read from
``request.stream()`` and fed to ``multipart``'s push parser (the parser Litestar itself
depends on, so nothing new is installed), and each file part's bytes go to a
:class:`BlobWriter` as they arrive: the API holds one network read and one chunk per upload.

Caps are checked while streaming (file count, bytes per file, bytes in total, the body as a
whole); on any failure every object written so far is deleted, so nothing partial is ever
handed to the worker. After a cap is hit the rest of the body is still read (and dropped),
up to the body cap, so the client gets to read the 413 instead of a reset connection.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from litestar import Request
from multipart import (  # type: ignore[import-untyped]
    MultipartError,
    MultipartSegment,
    PushMultipartParser,
    parse_options_header,
)

from api.errors import BadRequest, PayloadTooLarge
from api.services import Services
from broker.blobs import BlobRef, BlobWriter, delete_object, object_name
from broker.files_wire import UploadedObject

MAX_FIELD_BYTES = 4096
MAX_FIELDS = 16
# Multipart framing around each part (boundary, headers), allowed on top of the file bytes.
PART_OVERHEAD = 8 * 1024
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def parse_bool(value: str, name: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise BadRequest(f"`{name}` must be true or false, not {value!r}")


@dataclass(slots=True)
class ReceivedUpload:
    files: list[UploadedObject] = field(default_factory=list)
    refs: list[BlobRef] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(f.size for f in self.files)


async def discard(services: Services, refs: list[BlobRef]) -> None:
    for ref in refs:
        await delete_object(services.js, ref)


async def receive(
    request: Request[Any, Any, Any], services: Services, session_id: str
) -> ReceivedUpload:
    """Stream the body's file parts into objects; the caller owns (and deletes) them."""
    s = services.settings
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get("boundary", "")
    if ctype != "multipart/form-data" or not boundary:
        raise BadRequest("send the files as multipart/form-data (field name `files`)")
    body_cap = s.upload_max_total_bytes + (s.upload_max_files + MAX_FIELDS) * PART_OVERHEAD
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > body_cap:
        raise PayloadTooLarge(
            f"the upload is larger than the {s.upload_max_total_bytes}-byte total limit",
            limit=s.upload_max_total_bytes,
        )
    out = ReceivedUpload()
    writer: BlobWriter | None = None
    current: MultipartSegment | None = None
    field_buf = bytearray()
    size = 0
    received = 0
    body = request.stream()
    try:
        parser = PushMultipartParser(
            boundary,
            max_header_size=4096,
            max_segment_count=s.upload_max_files + MAX_FIELDS + 1,
        )
        async for data in body:
            received += len(data)
            if received > body_cap:
                raise PayloadTooLarge(
                    f"the upload is larger than the {s.upload_max_total_bytes}-byte total limit",
                    limit=s.upload_max_total_bytes,
                )
            for event in parser.parse(data):
                if isinstance(event, MultipartSegment):
                    current, size = event, 0
                    if event.filename is not None:
                        if len(out.files) >= s.upload_max_files:
                            raise PayloadTooLarge(
                                f"at most {s.upload_max_files} files per upload",
                                limit=s.upload_max_files,
                            )
                        writer = await BlobWriter(
                            services.nc,
                            services.js,
                            object_name(session_id, "up"),
                            flow_control=False,
                        ).open()
                    elif len(out.fields) >= MAX_FIELDS:
                        raise BadRequest("too many form fields")
                    else:
                        field_buf.clear()
                elif event is None:  # end of the part
                    assert current is not None
                    if writer is not None and not current.filename and not writer.size:
                        # A form's file input left empty: browsers still send the part.
                        await writer.abort("empty file input", notify=False)
                        writer = None
                    elif writer is not None:
                        await writer.close()
                        out.refs.append(writer.ref)
                        out.files.append(
                            UploadedObject(
                                filename=current.filename or "",
                                name=writer.ref.name,
                                nuid=writer.ref.nuid,
                                size=writer.size,
                            )
                        )
                        writer = None
                    else:
                        out.fields[current.name or ""] = field_buf.decode("utf-8", "replace")
                    current = None
                else:
                    size += len(event)
                    if writer is not None:
                        if size > s.upload_max_bytes:
                            raise PayloadTooLarge(
                                f"{current.filename if current else 'a file'!r} is larger "
                                f"than the {s.upload_max_bytes}-byte limit per file",
                                limit=s.upload_max_bytes,
                            )
                        if out.total + size > s.upload_max_total_bytes:
                            raise PayloadTooLarge(
                                f"the upload is larger than the {s.upload_max_total_bytes}-byte "
                                "total limit",
                                limit=s.upload_max_total_bytes,
                            )
                        await writer.write(event)
                    else:
                        if size > MAX_FIELD_BYTES:
                            raise BadRequest(f"form field is longer than {MAX_FIELD_BYTES} bytes")
                        field_buf += event
        parser.close()
    except BaseException as exc:
        if writer is not None:
            await writer.abort("the upload was refused", notify=False)
        await discard(services, out.refs)
        if isinstance(exc, PayloadTooLarge | BadRequest):
            # Read (and drop) what the client is still sending, so it reads our answer.
            with contextlib.suppress(Exception):
                async for data in body:
                    received += len(data)
                    if received > body_cap:
                        break
        if isinstance(exc, MultipartError):
            raise BadRequest(f"malformed multipart body: {exc}") from exc
        raise
    return out
