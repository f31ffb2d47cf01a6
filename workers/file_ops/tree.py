"""The workspace as a tree, read through directory descriptors (links are shown, not followed)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from typing import Any

from workers.file_ops.paths import _DIR_FLAGS, Workspace, display_name

# A workspace with a runaway node_modules must not make the worker build a gigabyte of JSON.
MAX_ENTRIES = 200_000
# Deeper directories are listed without children; also keeps recursion and open fds bounded.
MAX_DEPTH = 128


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _Walk:
    def __init__(self, max_entries: int, max_depth: int) -> None:
        self.files = 0
        self.directories = 0
        self.total_size = 0
        self.entries = 0
        self.truncated = False
        self.max_entries = max_entries
        self.max_depth = max_depth

    def children(self, dir_fd: int, prefix: str, depth: int) -> tuple[list[dict[str, Any]], int]:
        """The entries of one directory (sorted: directories first) and their total size."""
        with os.scandir(dir_fd) as it:
            entries = list(it)
        nodes: list[dict[str, Any]] = []
        size = 0
        listed: list[tuple[bool, str, os.DirEntry[str], os.stat_result]] = []
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while we looked
            listed.append((not stat.S_ISDIR(st.st_mode), entry.name.casefold(), entry, st))
        listed.sort(key=lambda t: (t[0], t[1]))
        for _, _, entry, st in listed:
            if self.entries >= self.max_entries:
                self.truncated = True
                break
            self.entries += 1
            name = display_name(entry.name)
            path = f"{prefix}{name}"
            node: dict[str, Any] = {
                "name": name,
                "type": "file",
                "path": path,
                "size": st.st_size,
                "modified": _iso(st.st_mtime),
            }
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                self.directories += 1
                node["type"] = "directory"
                node["children"], node["size"] = self._subdir(dir_fd, entry.name, path, depth)
            elif stat.S_ISREG(mode):
                self.files += 1
                self.total_size += st.st_size
            elif stat.S_ISLNK(mode):
                node["type"] = "symlink"
                node["size"] = 0
                try:
                    node["target"] = display_name(os.readlink(entry.name, dir_fd=dir_fd))
                except OSError:
                    node["target"] = None
            else:
                node["type"] = "other"  # FIFO, socket, device: listed, never opened
                node["size"] = 0
            size += node["size"]
            nodes.append(node)
        return nodes, size

    def _subdir(
        self, dir_fd: int, name: str, path: str, depth: int
    ) -> tuple[list[dict[str, Any]], int]:
        if depth + 1 >= self.max_depth:
            self.truncated = True
            return [], 0
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError:
            return [], 0  # replaced by a link or removed since scandir: list it empty
        try:
            return self.children(fd, f"{path}/", depth + 1)
        finally:
            os.close(fd)


def build_tree(
    ws: Workspace,
    session_id: str,
    *,
    max_entries: int = MAX_ENTRIES,
    max_depth: int = MAX_DEPTH,
) -> dict[str, Any]:
    """The whole workspace as nested nodes, plus totals (blocking: run it in a thread)."""
    fd = ws.open_root()
    try:
        st = os.fstat(fd)
        walk = _Walk(max_entries, max_depth)
        children, size = walk.children(fd, "", 0)
    finally:
        os.close(fd)
    out: dict[str, Any] = {
        "session_id": session_id,
        "root": {
            "name": "workspace",
            "type": "directory",
            "path": "",
            "size": size,
            "modified": _iso(st.st_mtime),
            "children": children,
        },
        "total_files": walk.files,
        "total_directories": walk.directories,
        "total_size": walk.total_size,
    }
    if walk.truncated:
        out["truncated"] = True
    return out
