"""Response shapes of the file routes (for OpenAPI; the worker's JSON is passed through)."""

from __future__ import annotations

from typing import Literal

import msgspec


class TreeNode(msgspec.Struct, kw_only=True):
    """One entry of the workspace; ``type`` comes from what it is, not from its name."""

    name: str
    type: Literal["file", "directory", "symlink", "other"]
    path: str
    size: int
    modified: str
    children: list[TreeNode] | None = None
    # Symbolic links only: what the link says (it is never followed by the tree).
    target: str | None = None


class TreeResponse(msgspec.Struct, kw_only=True):
    session_id: str
    root: TreeNode
    total_files: int
    total_directories: int
    total_size: int
    truncated: bool = False


class TextPreview(msgspec.Struct, kw_only=True):
    type: Literal["text"]
    path: str
    content: str
    language: str
    size: int
    lines: int | None
    truncated: bool


class BinaryPreview(msgspec.Struct, kw_only=True):
    type: Literal["binary"]
    path: str
    size: int
    mime: str
    download_url: str


class UploadedFile(msgspec.Struct, kw_only=True):
    filename: str
    path: str
    size: int


class UploadResponse(msgspec.Struct, kw_only=True):
    uploaded: list[UploadedFile]
    target_path: str
