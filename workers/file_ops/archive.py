"""A folder of the workspace as a ZIP stream, generated lazily with bounded memory.

The walk goes through directory descriptors and opens each file with ``O_NOFOLLOW`` just
before its bytes are needed, so at most one file (plus the directories on the current
path) is open at a time, and whatever the agent does meanwhile, nothing outside the
workspace is read. Symbolic links, FIFOs, sockets and devices are skipped: a link stored
as a link would hand the user's unzip tool a pointer at ``/etc/passwd`` (or at
``../../..``) chosen by the agent.
"""

from __future__ import annotations

import os
import stat
import unicodedata
import zipfile
from collections.abc import Generator, Iterator

from zipstream import ZipStream

from workers.file_ops.paths import _DIR_FLAGS, _FILE_FLAGS, display_name

READ_SIZE = 1024 * 1024
MAX_DEPTH = 128


def arc_component(name: str) -> str:
    """One name as it may appear in the archive.

    Backslashes are separators to Windows unzip tools (an agent-made file called
    ``..\\..\\x`` would extract outside the target there) and control characters can
    rewrite a terminal listing: both become ``_``.
    """
    name = display_name(name)
    return "".join(
        "_" if ch == "\\" or unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in name
    )


def read_fd(fd: int, size: int) -> Generator[bytes, None, None]:
    """The file's first ``size`` bytes (as ``fstat`` saw it), then close it.

    Reading at most the announced size keeps the archive consistent while an agent
    appends to a log, and bounds the work whatever it does.
    """
    try:
        left = size
        while left > 0:
            block = os.read(fd, min(READ_SIZE, left))
            if not block:
                break
            left -= len(block)
            yield block
    finally:
        os.close(fd)


def iter_zip(dir_fd: int, *, compression: str = "store") -> Generator[bytes, None, None]:
    """Generate a ZIP of the directory open at ``dir_fd`` (which this closes when done).

    ``store`` (the default) keeps the stream at disk speed and lets the ZIP64 entries be
    written without guessing; ``deflate`` trades throughput for size.
    """
    compress = zipfile.ZIP_DEFLATED if compression == "deflate" else zipfile.ZIP_STORED
    zs = ZipStream(compress_type=compress, compress_level=6 if compression == "deflate" else None)

    def walk(fd: int, prefix: str, depth: int) -> Iterator[bytes]:
        with os.scandir(fd) as it:
            entries = sorted(it, key=lambda e: e.name)
        if not entries and prefix:
            zs.mkdir(prefix)
            yield from zs.all_files()
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            arcname = prefix + arc_component(entry.name)
            if stat.S_ISDIR(st.st_mode):
                if depth + 1 >= MAX_DEPTH:
                    continue
                try:
                    sub = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    continue  # became a link or vanished since scandir
                try:
                    yield from walk(sub, arcname + "/", depth + 1)
                finally:
                    os.close(sub)
            elif stat.S_ISREG(st.st_mode):
                try:
                    ffd = os.open(entry.name, _FILE_FLAGS, dir_fd=fd)
                except OSError:
                    continue
                fst = os.fstat(ffd)
                if not stat.S_ISREG(fst.st_mode):
                    os.close(ffd)
                    continue
                zs.add(read_fd(ffd, fst.st_size), arcname, size=fst.st_size)
                # Stream this entry now, so its descriptor is closed before the next opens.
                yield from zs.all_files()
            # Links and special files are skipped on purpose (see the module docstring).

    try:
        yield from walk(dir_fd, "", 0)
        yield from zs.footer()
    finally:
        os.close(dir_fd)


def pull(gen: Iterator[bytes], target: int = 1024 * 1024) -> bytes | None:
    """Take at least ``target`` bytes from ``gen`` (less at its end); None when exhausted.

    Called through ``asyncio.to_thread``: one thread hop per megabyte, not per piece.
    """
    parts: list[bytes] = []
    n = 0
    for piece in gen:
        if piece:
            parts.append(piece)
            n += len(piece)
            if n >= target:
                break
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else b"".join(parts)
