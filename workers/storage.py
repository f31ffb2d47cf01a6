"""Enforce ``storage_limit``: each session's workspace (and home) is its own fixed-size filesystem.

This engine stores volumes on overlay2 over ext4, which has no per-volume quota (that needs
XFS project quotas). So the worker makes, per session, a sparse file of exactly the limit,
formats it ext4 and loop-mounts it on the host; the provider bind-mounts the mount point into
the container. Writing past the limit is ``ENOSPC`` inside the session, and the host's disk
holds at most the limit (the file is sparse: only what was written takes space).

Layout under ``root`` (``AGC_STORAGE_DIR``): ``<sid>/workspace.img`` mounted at
``<sid>/workspace``, ``<sid>/home.img`` at ``<sid>/home``. Everything is idempotent: a worker
that restarts finds the images mounted (or mounts them again) and reuses them.

Needs root on the host (``mount``), ``mkfs.ext4`` and loop devices; :func:`available` says
whether they are there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import structlog

from broker import subjects

log = structlog.get_logger("agc.storage")

AGENT_UID = 1000
# ext4 needs some room for its own metadata: below this a workspace cannot be formatted.
MIN_BYTES = 16 << 20


class StorageError(RuntimeError):
    """A workspace filesystem could not be made, mounted or removed; the message says why."""


@dataclass(frozen=True, slots=True)
class SessionStorage:
    """Host paths of one session's mounted filesystems."""

    workspace: Path
    home: Path


def available() -> str | None:
    """None when fixed-size workspaces can be made here, else the reason they cannot."""
    if os.geteuid() != 0:
        return "the worker is not root (loop-mounting needs it)"
    for tool in ("mkfs.ext4", "mount", "umount"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not Path("/dev/loop-control").exists():
        return "no loop devices (/dev/loop-control is missing)"
    return None


def _run(*cmd: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StorageError(f"{cmd[0]} failed: {(proc.stderr or proc.stdout).strip()}")


def _is_mounted(path: Path) -> bool:
    return os.path.ismount(path)


class WorkspaceStorage:
    """Make, mount and remove the fixed-size filesystems of sessions (blocking calls run in
    threads: ``mkfs`` of a few GiB sparse file takes well under a second)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, session_id: str) -> Path:
        return self.root / subjects.check_session_id(session_id)

    def paths(self, session_id: str) -> SessionStorage:
        d = self._dir(session_id)
        return SessionStorage(workspace=d / "workspace", home=d / "home")

    def exists(self, session_id: str) -> bool:
        return _is_mounted(self.paths(session_id).workspace)

    async def create(
        self, session_id: str, workspace_bytes: int, home_bytes: int
    ) -> SessionStorage:
        """Make (or re-mount) the session's workspace and home, of exactly these sizes."""
        return await asyncio.to_thread(self._create, session_id, workspace_bytes, home_bytes)

    def _create(self, session_id: str, workspace_bytes: int, home_bytes: int) -> SessionStorage:
        paths = self.paths(session_id)
        d = self._dir(session_id)
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        for mount, size in ((paths.workspace, workspace_bytes), (paths.home, home_bytes)):
            self._mount(mount, max(size, MIN_BYTES))
        return paths

    def _mount(self, mount: Path, size: int) -> None:
        image = mount.with_suffix(".img")
        if _is_mounted(mount):
            return
        if not image.exists():
            fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.ftruncate(fd, size)  # sparse: takes no space until written
            finally:
                os.close(fd)
            # root_owner: the agent (uid 1000) owns the filesystem's root; -m 0: no blocks
            # reserved for root, so the limit is what the agent gets.
            _run(
                "mkfs.ext4",
                "-q",
                "-F",
                "-m",
                "0",
                "-E",
                f"root_owner={AGENT_UID}:{AGENT_UID},nodiscard",
                str(image),
            )
        mount.mkdir(exist_ok=True)
        _run("mount", "-o", "loop,nosuid,nodev,noatime", str(image), str(mount))
        # mkfs leaves lost+found (root's, mode 0700) in the agent's workspace: it is only for
        # fsck, which makes it again when it needs it.
        with contextlib.suppress(FileNotFoundError, OSError):
            (mount / "lost+found").rmdir()

    async def remove(self, session_id: str) -> None:
        """Unmount and delete the session's filesystems (missing parts are fine)."""
        await asyncio.to_thread(self._remove, session_id)

    def _remove(self, session_id: str) -> None:
        d = self._dir(session_id)
        if not d.exists():
            return
        for mount in (d / "workspace", d / "home"):
            if _is_mounted(mount):
                try:
                    _run("umount", str(mount))
                except StorageError:
                    # Still busy (a container not gone yet): detach now, freed when unused.
                    _run("umount", "-l", str(mount))
        for mount in (d / "workspace", d / "home"):
            if _is_mounted(mount):
                raise StorageError(f"{mount} is still mounted")
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(d)
        log.info("session storage removed", session_id=session_id)

    def remove_all(self) -> None:
        """Unmount and delete every session's filesystems under ``root`` (test teardown, or a
        host taken out of service); blocking."""
        if not self.root.exists():
            return
        for d in self.root.iterdir():
            if d.is_dir() and subjects.SESSION_ID_RE.fullmatch(d.name):
                self._remove(d.name)
