"""Place uploaded objects into the workspace: every file or none, owned by the agent's user.

Each file is first written to a hidden temporary name in the target directory (``O_EXCL``,
``O_NOFOLLOW``, relative to the directory's descriptor), and only when all of them are
complete are they moved to their names: ``link`` (fails if the name appeared meanwhile:
no overwrite means none, even against a racing agent) or ``rename`` (with ``overwrite``).
A failure at any point removes the temporaries, the files already linked and the
directories this upload created, so nothing partial is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
import uuid
from dataclasses import dataclass, field
from typing import Any

from broker.files_wire import UploadRequest
from workers.file_ops.errors import BadPath, Exists, NoSpace, TooLarge
from workers.file_ops.paths import Parts, Workspace, join, sanitize_filename, split_path

_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_WRITE_BATCH = 4 * 1024 * 1024


@dataclass(slots=True)
class _Plan:
    target: Parts
    resolved: Parts
    names: list[str]
    created: list[Parts] = field(default_factory=list)
    temps: list[str] = field(default_factory=list)
    placed: list[str] = field(default_factory=list)
    dir_fd: int = -1


def plan(ws: Workspace, req: UploadRequest) -> _Plan:
    """Validate the request against the workspace without changing anything (blocking)."""
    if not req.files:
        raise BadPath("no files in the upload", code="no_files")
    if len(req.files) > req.max_files:
        raise TooLarge(f"at most {req.max_files} files per upload")
    total = 0
    for f in req.files:
        if f.size > req.max_file_bytes:
            raise TooLarge(f"{f.filename!r} is larger than {req.max_file_bytes} bytes")
        total += f.size
    if total > req.max_total_bytes:
        raise TooLarge(f"the upload is larger than {req.max_total_bytes} bytes in total")
    target = split_path(req.target_path, what="target_path")
    names = [sanitize_filename(f.filename) for f in req.files]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise BadPath(f"two uploaded files are both named {name!r}", code="duplicate_name")
        seen.add(name)
    resolved = ws.resolve(target)
    base = ws.lstat(resolved)
    if base is not None and not stat.S_ISDIR(base.st_mode):
        raise BadPath(f"target_path {join(target)!r} is not a directory", code="not_a_directory")
    existing: list[str] = []
    for name in names if base is not None else []:
        st = ws.lstat((*resolved, name))
        if st is None:
            continue
        if stat.S_ISDIR(st.st_mode):
            raise Exists(
                f"{join((*target, name))!r} is a directory; it cannot be replaced by a file",
                existing=[join((*target, name))],
            )
        existing.append(join((*target, name)))
    if existing and not req.overwrite:
        raise Exists(
            f"{len(existing)} file(s) already exist; send overwrite=true to replace them",
            existing=existing,
        )
    return _Plan(target=target, resolved=resolved, names=names)


def prepare(ws: Workspace, p: _Plan) -> None:
    """Create the target directory (and parents) and open it (blocking)."""
    p.dir_fd = ws.open_dir(p.resolved, create=True, created=p.created)


def _write_all(fd: int, blocks: list[bytes]) -> None:
    for block in blocks:
        view = memoryview(block)
        while view:
            n = os.write(fd, view)
            view = view[n:]


def _space_error(exc: OSError) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpace("the workspace's disk is full")
    return exc


async def write_temp(
    ws: Workspace,
    p: _Plan,
    chunks: Any,
    *,
    max_bytes: int,
) -> int:
    """Write one object (an async iterator of chunks) to a new temporary file; its size."""
    tmp = f".agc-upload-{uuid.uuid4().hex}"
    fd = os.open(tmp, _TMP_FLAGS, 0o644, dir_fd=p.dir_fd)
    p.temps.append(tmp)
    size = 0
    try:
        os.fchown(fd, ws.uid, ws.gid)
        pending: list[bytes] = []
        pending_n = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise TooLarge(f"a file is larger than {max_bytes} bytes")
            pending.append(chunk)
            pending_n += len(chunk)
            if pending_n >= _WRITE_BATCH:
                await asyncio.to_thread(_write_all, fd, pending)
                pending, pending_n = [], 0
        if pending:
            await asyncio.to_thread(_write_all, fd, pending)
    except OSError as exc:
        raise _space_error(exc) from exc
    finally:
        os.close(fd)
    return size


def commit(p: _Plan, overwrite: bool) -> None:
    """Move every temporary file to its name (blocking)."""
    for tmp, name in zip(p.temps, p.names, strict=True):
        try:
            if overwrite:
                os.rename(tmp, name, src_dir_fd=p.dir_fd, dst_dir_fd=p.dir_fd)
            else:
                os.link(tmp, name, src_dir_fd=p.dir_fd, dst_dir_fd=p.dir_fd, follow_symlinks=False)
                os.unlink(tmp, dir_fd=p.dir_fd)
        except FileExistsError as exc:
            raise Exists(
                f"{join((*p.target, name))!r} appeared during the upload",
                existing=[join((*p.target, name))],
            ) from exc
        except IsADirectoryError as exc:
            raise Exists(
                f"{join((*p.target, name))!r} is a directory", existing=[join((*p.target, name))]
            ) from exc
        except OSError as exc:
            if exc.errno == errno.ENOTEMPTY:
                raise Exists(
                    f"{join((*p.target, name))!r} is a directory",
                    existing=[join((*p.target, name))],
                ) from exc
            raise
        p.placed.append(name)
    p.temps.clear()


def rollback(ws: Workspace, p: _Plan, overwrite: bool) -> None:
    """Remove whatever this upload wrote (blocking; best effort, never raises)."""
    if p.dir_fd >= 0:
        for tmp in p.temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=p.dir_fd)
        if not overwrite:
            # Files linked before a later one failed are this upload's own: take them back.
            for name in p.placed:
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=p.dir_fd)
    for parts in reversed(p.created):
        with contextlib.suppress(Exception):
            parent = ws.open_dir(parts[:-1])
            try:
                os.rmdir(parts[-1], dir_fd=parent)
            finally:
                os.close(parent)


def finish(p: _Plan) -> None:
    if p.dir_fd >= 0:
        os.close(p.dir_fd)
        p.dir_fd = -1


def result(p: _Plan, sizes: list[int]) -> dict[str, Any]:
    return {
        "uploaded": [
            {"filename": name, "path": join((*p.target, name)), "size": size}
            for name, size in zip(p.names, sizes, strict=True)
        ],
        "target_path": join(p.target),
    }
