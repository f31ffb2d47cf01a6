"""Requests the API sends to ``agc.rpc.<sid>.files.<op>`` and the shapes of their replies.

Shared by the API and the workers (it imports nothing from either). Requests are msgspec
Structs; new fields get defaults so an older worker and a newer API still understand each
other. Replies are JSON objects; a failed one is ``{"error", "detail", "status", …}``.
A reply whose bytes follow separately carries ``"blob": BlobRef`` (see ``blobs``).
"""

from __future__ import annotations

from typing import Literal

import msgspec

OP_TREE = "tree"
OP_OPEN = "open"
OP_ARCHIVE = "archive"
OP_UPLOAD = "upload"


class TreeRequest(msgspec.Struct, kw_only=True):
    """The whole workspace as a tree."""


class OpenRequest(msgspec.Struct, kw_only=True):
    """Preview (or, with ``mode="raw"``, stream the bytes of) one file.

    ``download_suffix``: the path came from ``…/{path}/download``; if ``path`` minus its last
    segment is a file, that file is meant (raw), else ``path`` is a file called ``download``.
    """

    path: str
    mode: Literal["preview", "raw"] = "preview"
    download_suffix: bool = False
    preview_max_bytes: int = 512 * 1024


class ArchiveRequest(msgspec.Struct, kw_only=True):
    """A folder (default the whole workspace) as a ZIP stream."""

    path: str = ""
    compression: Literal["store", "deflate"] = "store"


class UploadedObject(msgspec.Struct, kw_only=True):
    """One uploaded file, already complete in the object store."""

    filename: str
    name: str
    nuid: str
    size: int


class UploadRequest(msgspec.Struct, kw_only=True):
    """Move uploaded objects into ``target_path``: all of them, or none."""

    target_path: str = ""
    overwrite: bool = False
    files: list[UploadedObject] = msgspec.field(default_factory=list)
    max_file_bytes: int = 50 * 1024 * 1024
    max_total_bytes: int = 200 * 1024 * 1024
    max_files: int = 100


def encode(request: msgspec.Struct) -> bytes:
    return msgspec.json.encode(request)
