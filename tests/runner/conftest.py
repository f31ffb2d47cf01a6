"""Fixtures for the runner tests: a factory of real runner subprocesses with private dirs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.modelserver.fixture import model_server  # noqa: F401  (fixture)
from tests.runner.harness import RunnerProcess

StartRunner = Callable[..., Awaitable[RunnerProcess]]


@pytest.fixture
async def start_runner(tmp_path: Path) -> AsyncIterator[StartRunner]:
    """Return ``start(home=None, workspace=None, **env)`` → a started RunnerProcess.

    Each runner gets its own HOME and workspace under ``tmp_path`` unless given; all are
    terminated at teardown.
    """
    started: list[RunnerProcess] = []

    async def start(
        home: Path | None = None, workspace: Path | None = None, **env: str
    ) -> RunnerProcess:
        n = len(started)
        home = home or tmp_path / f"home{n}"
        workspace = workspace or tmp_path / f"ws{n}"
        home.mkdir(parents=True, exist_ok=True)
        workspace.mkdir(parents=True, exist_ok=True)
        proc = RunnerProcess(home=home, workspace=workspace, extra_env=dict(env))
        started.append(proc)
        return await proc.start()

    yield start
    for proc in started:
        await proc.close()
