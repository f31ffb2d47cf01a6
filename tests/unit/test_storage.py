"""Fixed-size workspaces (workers/storage.py) on this host's real loop devices and ext4.

What a session sees is checked in a real container of the agent image, as the agent's uid:
writing past the limit fails with ENOSPC while the host's disk holds at most the limit.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.stack import IMAGE, require_docker
from workers.storage import WorkspaceStorage, available

MiB = 1 << 20


@pytest.fixture
async def storage(tmp_path: Path) -> WorkspaceStorage:
    reason = available()
    assert reason is None, f"fixed-size workspaces need root, mkfs.ext4 and loop devices: {reason}"
    return WorkspaceStorage(tmp_path / "storage")


def _sid() -> str:
    return f"conv-{uuid.uuid4().hex}"


async def test_a_write_past_the_limit_is_enospc_in_the_container_and_the_host_keeps_its_disk(
    storage: WorkspaceStorage,
) -> None:
    require_docker()
    sid = _sid()
    paths = await storage.create(sid, 64 * MiB, 32 * MiB)
    try:
        assert os.path.ismount(paths.workspace) and os.path.ismount(paths.home)
        proc = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "none",
                "--user",
                "1000:1000",
                "--read-only",
                "--cap-drop",
                "ALL",
                "--entrypoint",
                "sh",
                "-v",
                f"{paths.workspace}:/workspace",
                IMAGE,
                "-c",
                "dd if=/dev/zero of=/workspace/fill bs=1M count=200; echo rc=$?",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        out = proc.stdout + proc.stderr
        assert "No space left on device" in out, out
        assert "rc=0" not in out, out
        image = paths.workspace.with_suffix(".img")
        # The host holds at most the limit, however much the agent tried to write.
        assert image.stat().st_blocks * 512 <= 64 * MiB
        written = (paths.workspace / "fill").stat().st_size
        assert 32 * MiB < written < 64 * MiB
    finally:
        await storage.remove(sid)
    assert not os.path.ismount(paths.workspace)
    assert not paths.workspace.parent.exists()


async def test_create_is_idempotent_and_keeps_what_was_written(storage: WorkspaceStorage) -> None:
    sid = _sid()
    paths = await storage.create(sid, 32 * MiB, 32 * MiB)
    try:
        (paths.workspace / "kept.txt").write_text("still here")
        assert paths.workspace.stat().st_uid == 1000  # the agent owns its workspace
        assert sorted(p.name for p in paths.workspace.iterdir()) == ["kept.txt"]  # no lost+found
        # A restarted worker creates again: same filesystem, nothing lost.
        again = await storage.create(sid, 32 * MiB, 32 * MiB)
        assert (again.workspace / "kept.txt").read_text() == "still here"
        assert storage.exists(sid)
    finally:
        await storage.remove(sid)
    assert not storage.exists(sid)
    await storage.remove(sid)  # removing twice is fine


async def test_a_malformed_session_id_never_becomes_a_path(storage: WorkspaceStorage) -> None:
    with pytest.raises(ValueError, match="malformed session id"):
        await storage.create("../../etc", 32 * MiB, 32 * MiB)
