"""Workspace file operations the owning worker answers on ``agc.rpc.<sid>.files.<op>``.

The worker runs on the Docker host, so it reads and writes a session's volume directly at
its host mountpoint, through the safe walk in ``workers.file_ops.paths`` (every path is
resolved and checked here, where the files are, never on the API host). Small answers go
back as the reply; bytes that may not fit a NATS message (file contents, ZIPs, a large
tree) are streamed through the ``AGC_FILES`` object store (``broker.blobs``) and
the reply says where.

Register with ``register_file_ops(router)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

import msgspec
import structlog
from nats.aio.msg import Msg

from broker.blobs import (
    BlobCancelled,
    BlobError,
    BlobReader,
    BlobRef,
    BlobWriter,
    delete_object,
    object_name,
)
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
from workers.errors import VolumeMissing
from workers.file_ops import archive, upload
from workers.file_ops.errors import BadPath, FileOpError, Missing, TooLarge
from workers.file_ops.paths import Parts, Workspace, join, split_path
from workers.file_ops.preview import SNIFF_BYTES, language, sniff, text_preview
from workers.file_ops.tree import build_tree
from workers.host import Host, SessionRef
from workers.providers.base import AGENT_UID
from workers.rpc import RpcRouter

log = structlog.get_logger("agc.files")

T = TypeVar("T", bound=msgspec.Struct)
# Room left in a reply for everything around an inline payload (JSON keys, headers).
_REPLY_MARGIN = 16 * 1024
_UID, _GID = (int(x) for x in AGENT_UID.split(":"))


def _decode(kind: type[T], data: bytes) -> T:
    try:
        return msgspec.json.decode(data or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise BadPath(f"invalid request: {exc}", code="bad_request") from exc
    except msgspec.DecodeError as exc:
        raise BadPath("the request is not JSON", code="bad_request") from exc


def _once(data: bytes) -> Generator[bytes, None, None]:
    yield data


class FileOps:
    """The handlers, bound to one host (its container provider, NATS and session store)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._roots: dict[str, str] = {}

    # -- plumbing ------------------------------------------------------------------------
    def _guarded(
        self, fn: Callable[[SessionRef, Msg], Awaitable[Any]]
    ) -> Callable[[SessionRef, Msg], Awaitable[Any]]:
        """Turn the file errors into replies with their status (extras such as ``existing``)."""

        async def handler(session: SessionRef, msg: Msg) -> Any:
            try:
                return await fn(session, msg)
            except FileOpError as exc:
                if isinstance(exc, Missing) and "workspace" in exc.detail:
                    self._roots.pop(session.session_id, None)
                return exc.reply()
            except BlobError as exc:
                return {"error": "transfer_failed", "detail": str(exc), "status": 502}

        return handler

    async def _workspace(self, session: SessionRef) -> Workspace:
        sid = session.session_id
        root = self._roots.get(sid)
        if root is None:
            try:
                root = await self.host.provider.volume_path(sid)
            except VolumeMissing as exc:
                raise Missing("the session's workspace no longer exists") from exc
            self._roots[sid] = root
        return Workspace(root, uid=_UID, gid=_GID)

    def _inline_limit(self) -> int:
        return max(int(self.host.nc.max_payload) - _REPLY_MARGIN, 64 * 1024)

    async def _stream(
        self, writer: BlobWriter, gen: Generator[bytes, None, None], what: str, sid: str
    ) -> None:
        """Feed a blocking generator into a writer, a megabyte per thread hop."""
        try:
            while (block := await asyncio.to_thread(archive.pull, gen)) is not None:
                await writer.write(block)
            await writer.close()
        except BlobCancelled:
            log.info("transfer cancelled by its reader", session_id=sid, what=what)
            await writer.abort("cancelled")
        except Exception as exc:
            log.warning("transfer failed", session_id=sid, what=what, error=str(exc))
            await writer.abort(f"the {what} failed: {type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(gen.close)

    async def _start_stream(
        self, session: SessionRef, kind: str, gen: Generator[bytes, None, None], size: int | None
    ) -> BlobRef:
        writer = await BlobWriter(
            self.host.nc,
            self.host.js,
            object_name(session.session_id, kind),
            flow_control=True,
            size=size,
        ).open()
        # The reply goes out first; the bytes follow into the object store on their own.
        self.host.spawn(self._stream(writer, gen, kind, session.session_id))
        return writer.ref

    # -- operations ----------------------------------------------------------------------
    async def tree(self, session: SessionRef, msg: Msg) -> Any:
        _decode(TreeRequest, msg.data)
        ws = await self._workspace(session)

        def _build() -> bytes:
            return msgspec.json.encode(build_tree(ws, session.session_id))

        data = await asyncio.to_thread(_build)
        if len(data) <= self._inline_limit():
            return data
        ref = await self._start_stream(session, "tree", _once(data), len(data))
        return {"blob": ref, "size": len(data)}

    async def open(self, session: SessionRef, msg: Msg) -> Any:
        req = _decode(OpenRequest, msg.data)
        ws = await self._workspace(session)
        parts = split_path(req.path)
        mode = req.mode
        if req.download_suffix and len(parts) >= 2 and parts[-1] == "download":
            # ``…/{file}/download`` means the file, unless {file} is a directory holding a
            # file called ``download``: then that file is previewed.
            prefix = parts[:-1]
            st = await asyncio.to_thread(lambda: ws.lstat(ws.resolve(prefix)))
            if st is not None and stat.S_ISREG(st.st_mode):
                parts, mode = prefix, "raw"
        limit = max(1, min(req.preview_max_bytes, self._inline_limit() // 2))
        reply, fd, size = await asyncio.to_thread(self._open_sync, ws, parts, mode, limit)
        if fd is None:
            return self._fit(reply)
        try:
            reply["blob"] = await self._start_stream(
                session, "file", archive.read_fd(fd, size), size
            )
        except BaseException:
            os.close(fd)  # the generator never started, so its own cleanup cannot run
            raise
        return reply

    def _fit(self, reply: dict[str, Any]) -> bytes:
        """Encode a preview, shortening its content until the reply fits in one message.

        JSON escaping can grow text up to six-fold (control characters), so the byte cap on
        the content alone does not guarantee the reply fits under NATS's payload limit.
        """
        data = msgspec.json.encode(reply)
        while len(data) > self._inline_limit() and reply.get("content"):
            reply["content"] = reply["content"][: len(reply["content"]) // 2]
            reply["truncated"] = True
            data = msgspec.json.encode(reply)
        return data

    def _open_sync(
        self, ws: Workspace, parts: Parts, mode: str, limit: int
    ) -> tuple[dict[str, Any], int | None, int]:
        fd, st = ws.open_file(ws.resolve(parts))
        try:
            name, path, size = parts[-1], join(parts), st.st_size
            head = os.pread(fd, SNIFF_BYTES, 0)
            kind = sniff(head, name, complete=len(head) >= size)
            base = {"path": path, "name": name, "size": size, "mime": kind.mime}
            if mode == "raw":
                return {"type": "raw", **base}, fd, size
            if kind.kind in ("image", "svg"):
                return {"type": kind.kind, **base}, fd, size
            if kind.kind == "text":
                preview = text_preview(fd, size, head, limit)
                os.close(fd)
                return (
                    {
                        "type": "text",
                        "path": path,
                        "content": preview["content"],
                        "language": language(name, head),
                        "size": size,
                        "lines": preview["lines"],
                        "truncated": preview["truncated"],
                    },
                    None,
                    size,
                )
            os.close(fd)
            return {"type": "binary", "path": path, "size": size, "mime": kind.mime}, None, size
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise

    async def archive(self, session: SessionRef, msg: Msg) -> Any:
        req = _decode(ArchiveRequest, msg.data)
        ws = await self._workspace(session)
        parts = split_path(req.path)

        def _open() -> int:
            return ws.open_dir(ws.resolve(parts))

        dir_fd = await asyncio.to_thread(_open)
        gen = archive.iter_zip(dir_fd, compression=req.compression)
        try:
            ref = await self._start_stream(session, "zip", gen, None)
        except BaseException:
            os.close(dir_fd)  # the generator never started, so its own cleanup cannot run
            raise
        name = f"{parts[-1] if parts else 'workspace'}.zip"
        return {"type": "zip", "path": join(parts), "name": name, "blob": ref}

    async def upload(self, session: SessionRef, msg: Msg) -> Any:
        req = _decode(UploadRequest, msg.data)
        sid = session.session_id
        refs: list[BlobRef] = []
        for f in req.files:
            ref = BlobRef(name=f.name, nuid=f.nuid)
            try:
                ref.check()
            except BlobError as exc:
                raise BadPath(str(exc), code="bad_request") from exc
            if not f.name.startswith(f"{sid}/up/"):
                raise BadPath("an uploaded object belongs to another session", code="bad_request")
            refs.append(ref)
        try:
            ws = await self._workspace(session)
            plan = await asyncio.to_thread(upload.plan, ws, req)
            sizes: list[int] = []
            try:
                await asyncio.to_thread(upload.prepare, ws, plan)
                for ref in refs:
                    reader = await BlobReader(
                        self.host.nc, self.host.js, ref, idle_timeout=30.0, verify_digest=True
                    ).open()
                    try:
                        async with contextlib.aclosing(reader.chunks_iter()) as chunks:
                            sizes.append(
                                await upload.write_temp(
                                    ws, plan, chunks, max_bytes=req.max_file_bytes
                                )
                            )
                    finally:
                        await reader.close(delete=False)
                if sum(sizes) > req.max_total_bytes:
                    raise TooLarge(
                        f"the upload is larger than {req.max_total_bytes} bytes in total"
                    )
                await asyncio.to_thread(upload.commit, plan, req.overwrite)
            except BaseException:
                await asyncio.to_thread(upload.rollback, ws, plan, req.overwrite)
                raise
            finally:
                upload.finish(plan)
        finally:
            for ref in refs:
                await delete_object(self.host.js, ref)
        # Feeding the agent data is real use of the session: postpone its idle timeout.
        await self.host.store.touch(sid)
        log.info(
            "upload placed",
            session_id=sid,
            files=len(sizes),
            bytes=sum(sizes),
            target=join(plan.target),
        )
        return upload.result(plan, sizes)


def register_file_ops(router: RpcRouter) -> None:
    """Answer ``files.tree``, ``files.open``, ``files.archive`` and ``files.upload``."""
    ops = FileOps(router.host)
    for op, fn in (
        (OP_TREE, ops.tree),
        (OP_OPEN, ops.open),
        (OP_ARCHIVE, ops.archive),
        (OP_UPLOAD, ops.upload),
    ):
        router.register(f"files.{op}", ops._guarded(fn))
