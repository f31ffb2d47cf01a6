"""Routes under ``/api/files``: tree, preview, raw download, upload and ZIP download."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote_to_bytes

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from api.agents.auth import authorize
from api.errors import BadGateway, BadRequest
from api.files import service
from api.files.schemas import TextPreview, TreeResponse, UploadResponse
from api.files.service import Reply
from api.files.upload import discard, parse_bool, receive
from api.services import ServicesDep
from broker.files_wire import (
    OP_ARCHIVE,
    OP_OPEN,
    OP_TREE,
    OP_UPLOAD,
    ArchiveRequest,
    OpenRequest,
    TreeRequest,
    UploadRequest,
)

# Served bytes are the agent's: never let a browser guess a type or run a script from them.
BASE_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"}
# An SVG can carry scripts: shown as an image it may style itself, nothing more.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
UPLOAD_BYTES_PER_SECOND = 20 * 1024 * 1024


def _relative_path(request: Request[Any, Any, Any], session_id: str) -> str:
    """The file path exactly as the client sent it, percent-decoded once.

    Litestar's ``path`` parameter (and the scope's ``path``) come normalised: ``//`` folded,
    trailing ``/`` dropped. The worker must judge what the client actually asked for, so the
    path is taken from the request line itself (``raw_path``).
    """
    raw = request.scope.get("raw_path")
    full = unquote_to_bytes(raw).decode("utf-8", "replace") if raw else str(request.scope["path"])
    marker = f"/api/files/{session_id}/"
    at = full.find(marker)
    if at < 0:  # spelled unusually (encoded letters in the prefix): the router's view
        full = str(request.scope["path"])
        at = full.find(marker)
    return full[at + len(marker) :] if at >= 0 else ""


def _stream_headers(reply: Reply, disposition: str, filename: str) -> dict[str, str]:
    headers = {
        **BASE_HEADERS,
        "Content-Disposition": service.content_disposition(disposition, filename),
    }
    if reply.size is not None:
        headers["Content-Length"] = str(reply.size)
    return headers


class FilesController(Controller):
    path = "/api/files"
    tags = ["files"]

    @get(
        "/{session_id:str}",
        summary="The workspace as a tree",
        responses={200: ResponseSpec(data_container=TreeResponse, description="The tree")},
    )
    async def tree(
        self, request: Request[Any, Any, Any], session_id: FromPath[str], services: ServicesDep
    ) -> Response[Any]:
        """Every entry with name, type, path, size and modification time, plus totals.

        Symbolic links are listed as ``symlink`` with their ``target`` and never followed.
        """
        record = await authorize(request, services, session_id)
        reply, raw = await service.call(services, record, OP_TREE, TreeRequest())
        if reply.blob is None:
            return Response(raw, media_type=MediaType.JSON)
        headers = {"Content-Length": str(reply.size)} if reply.size is not None else {}
        return Stream(
            await service.follow(services, reply.blob), media_type=MediaType.JSON, headers=headers
        )

    @get(
        # A file called ``upload`` or ``download`` at the root would otherwise hit the POST
        # routes' static segments and get a 405.
        [
            "/{session_id:str}/{file_path:path}",
            "/{session_id:str}/upload",
            "/{session_id:str}/download",
        ],
        summary="Preview a file (or download it)",
        responses={
            200: ResponseSpec(
                # One container only (OpenAPI generation takes no unions here); a binary
                # file answers with the BinaryPreview shape, images with their bytes.
                data_container=TextPreview,
                description="Text: content (else BinaryPreview metadata, or image bytes)",
            )
        },
        response_headers=[ResponseHeader(name="X-Content-Type-Options", value="nosniff")],
    )
    async def read(
        self,
        request: Request[Any, Any, Any],
        session_id: FromPath[str],
        services: ServicesDep,
        file_path: FromPath[Path | None] = None,
        raw: FromQuery[bool] = False,
    ) -> Response[Any]:
        """Text as JSON; PNG/JPEG/GIF/WebP/SVG as the image; other files as metadata.

        ``?raw=true`` or ``…/{path}/download`` give the bytes as an attachment.
        """
        record = await authorize(request, services, session_id)
        rel = _relative_path(request, session_id)
        request_body = OpenRequest(
            path=rel,
            mode="raw" if raw else "preview",
            download_suffix=rel.rstrip("/").endswith("/download"),
            preview_max_bytes=services.settings.preview_max_bytes,
        )
        reply, data = await service.call(services, record, OP_OPEN, request_body)
        match reply.type:
            case "text":
                return Response(data, media_type=MediaType.JSON, headers=BASE_HEADERS)
            case "binary":
                body = msgspec.json.decode(data)
                body["download_url"] = service.download_url(session_id, reply.path)
                return Response(body, media_type=MediaType.JSON, headers=BASE_HEADERS)
            case "image" | "svg" | "raw" if reply.blob is not None:
                chunks = await service.follow(services, reply.blob)
                if reply.type == "raw":
                    headers = _stream_headers(reply, "attachment", reply.name)
                    media_type = "application/octet-stream"
                else:
                    headers = _stream_headers(reply, "inline", reply.name)
                    media_type = reply.mime
                if reply.type == "svg":
                    headers["Content-Security-Policy"] = SVG_CSP
                return Stream(chunks, media_type=media_type, headers=headers)
            case _:
                raise BadGateway(f"unexpected reply from the worker: {reply.type!r}")

    @post(
        "/{session_id:str}/upload",
        status_code=200,
        summary="Upload files into the workspace",
        # Litestar's body cap would apply to the whole stream before our per-file, total and
        # count caps could say which was exceeded; ``receive`` enforces all of them itself.
        request_max_body_size=None,
        responses={200: ResponseSpec(data_container=UploadResponse, description="Placed files")},
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        session_id: FromPath[str],
        services: ServicesDep,
        target_path: FromQuery[str | None] = None,
        overwrite: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """Multipart ``files`` (one or more), ``target_path`` (default the root), ``overwrite``.

        Every file is placed or none is: 409 lists existing names (without ``overwrite``),
        413 reports a cap (``AGC_UPLOAD_MAX_BYTES`` per file, a total and a count).
        """
        record = await authorize(request, services, session_id)
        service.ensure_workspace(record)
        received = await receive(request, services, session_id)
        try:
            if not received.files:
                raise BadRequest("no files: send one or more multipart parts named `files`")
            s = services.settings
            upload_request = UploadRequest(
                target_path=received.fields.get("target_path", target_path or ""),
                overwrite=parse_bool(
                    received.fields.get("overwrite", overwrite or "false"), "overwrite"
                ),
                files=received.files,
                max_file_bytes=s.upload_max_bytes,
                max_total_bytes=s.upload_max_total_bytes,
                max_files=s.upload_max_files,
            )
            timeout = service.RPC_TIMEOUT + received.total / UPLOAD_BYTES_PER_SECOND
            _, data = await service.call(
                services, record, OP_UPLOAD, upload_request, timeout=timeout
            )
        finally:
            # The worker deletes them once placed; this covers every path where it did not.
            await discard(services, received.refs)
        return Response(data, media_type=MediaType.JSON)

    @post(
        "/{session_id:str}/download",
        status_code=200,
        summary="Download the workspace (or a folder) as a ZIP",
        media_type="application/zip",
    )
    async def download(
        self,
        request: Request[Any, Any, Any],
        session_id: FromPath[str],
        services: ServicesDep,
        path: FromQuery[str] = "",
        compression: FromQuery[Literal["store", "deflate"]] = "store",
    ) -> Stream:
        """A streamed ZIP of ``?path=`` (default the whole workspace); links are left out."""
        record = await authorize(request, services, session_id)
        reply, _ = await service.call(
            services, record, OP_ARCHIVE, ArchiveRequest(path=path, compression=compression)
        )
        if reply.blob is None:
            raise BadGateway("the worker did not start the archive")
        chunks = await service.follow(services, reply.blob)
        return Stream(
            chunks,
            media_type="application/zip",
            headers={
                **BASE_HEADERS,
                "Content-Disposition": service.content_disposition("attachment", reply.name),
            },
        )
