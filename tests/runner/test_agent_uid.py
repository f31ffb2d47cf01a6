"""The agent runs as another uid than the runner (real SDK + CLI, runner/bin/agent-cli).

The runner here is root on the host, as it is uid 0 in its container; with AGC_AGENT_UID the
CLI and every tool it runs are uid 1000 and cannot read the runner's environment nor write
into its stdout (the worker's channel).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.modelserver.script import text, tool_use
from tests.modelserver.server import ModelServer
from tests.runner.conftest import StartRunner
from tests.runner.harness import base_config

AGENT_UID = 1000


@pytest.fixture
def agent_dirs() -> Iterator[tuple[Path, Path]]:
    # pytest's tmp dirs are root-only (0700): the agent's uid could not even reach them.
    base = Path(tempfile.mkdtemp(prefix="agc-uid-", dir="/tmp"))
    os.chmod(base, 0o755)  # noqa: S103 - the agent uid must traverse it
    home, ws = base / "home", base / "ws"
    for d in (home, ws):
        d.mkdir()
        os.chown(d, AGENT_UID, AGENT_UID)
    try:
        yield home, ws
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def test_tools_run_as_the_agent_uid_and_cannot_reach_the_runner(
    start_runner: StartRunner, model_server: ModelServer, agent_dirs: tuple[Path, Path]
) -> None:
    home, ws = agent_dirs
    runner = await start_runner(
        home=home, workspace=ws, AGC_AGENT_UID=str(AGENT_UID), AGC_TEST_MARKER="runner-only-9f3a"
    )
    assert runner.proc is not None
    pid = runner.proc.pid
    probe = (
        "id -u; "
        f"cat /proc/{pid}/environ || echo ENV-REFUSED; "
        f"echo forged >> /proc/{pid}/fd/1 || echo FD-REFUSED; "
        f"ls /proc/{pid}/fd || echo FDS-REFUSED; "
        "echo made > made.txt"
    )
    marker = model_server.add_script(
        "uid-probe", [[tool_use("Bash", {"command": probe})], [text("probed")]]
    )
    # bypassPermissions: the CLI refuses it as root, and it is not root any more
    await runner.ready(model_server.base_url, base_config(permission_mode="bypassPermissions"))
    events = await runner.turn(runner.chat(f"probe {marker}"))
    [done] = [e for e in events if e.type == "tool.completed"]
    out = done.data["output"]
    assert out.splitlines()[0] == str(AGENT_UID), out
    assert "ENV-REFUSED" in out and "FD-REFUSED" in out and "FDS-REFUSED" in out, out
    assert "runner-only-9f3a" not in out
    assert runner.bad_lines == []
    # the agent's files belong to the agent's uid
    assert (ws / "made.txt").stat().st_uid == AGENT_UID
    assert (home / ".claude").stat().st_uid == AGENT_UID
    assert await runner.stop() == 0
