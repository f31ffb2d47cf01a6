"""The original AgCluster's settings are honoured as aliases of the AGC_* ones (issue 14 part 2).

Each test sets the variable in the environment, the way a user's ``.env`` would, and reads the
settings object the process reads at start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.agents.service import with_container_defaults
from api.settings import ApiSettings
from configs.store import parse_config
from workers.settings import WorkerSettings

ORIGINAL_NAMES = (
    "API_HOST",
    "API_PORT",
    "API_DEBUG",
    "AGENT_IMAGE",
    "CONTAINER_CPU_QUOTA",
    "CONTAINER_MEMORY_LIMIT",
    "CONTAINER_STORAGE_LIMIT",
    "CONTAINER_PROVIDER",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ORIGINAL_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"AGC_{name.removeprefix('API_')}", raising=False)
    for name in ("AGC_HOST", "AGC_PORT", "AGC_DEBUG", "AGC_AGENT_IMAGE", "AGC_CONTAINER_PROVIDER"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        ("API_HOST", "0.0.0.0", "host", "0.0.0.0"),
        ("API_PORT", "8123", "port", 8123),
        ("API_DEBUG", "true", "debug", True),
        ("CONTAINER_CPU_QUOTA", "150000", "container_cpu_quota", 150_000),
        ("CONTAINER_MEMORY_LIMIT", "3g", "container_memory_limit", "3g"),
        ("CONTAINER_STORAGE_LIMIT", "7g", "container_storage_limit", "7g"),
    ],
)
def test_api_reads_the_original_names(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(name, value)
    assert getattr(ApiSettings(), field) == expected


def test_the_agc_name_wins_over_the_original_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_PORT", "8123")
    monkeypatch.setenv("AGC_PORT", "9000")
    assert ApiSettings().port == 9000


def test_defaults_are_the_originals(monkeypatch: pytest.MonkeyPatch) -> None:
    s = ApiSettings()
    assert (s.host, s.port, s.debug) == ("127.0.0.1", 8000, False)
    assert (s.container_cpu_quota, s.container_memory_limit, s.container_storage_limit) == (
        200_000,
        "4g",
        "10g",
    )
    w = WorkerSettings()
    assert (w.agent_image, w.container_provider) == ("agcluster-agent:latest", "docker")


def test_worker_reads_agent_image_and_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_IMAGE", "my-agent:1")
    monkeypatch.setenv("CONTAINER_PROVIDER", "docker")
    s = WorkerSettings()
    assert (s.agent_image, s.container_provider) == ("my-agent:1", "docker")


@pytest.mark.parametrize("provider", ["kubernetes", "fly", "", "Docker"])
def test_any_other_provider_is_a_clear_error_at_start(
    monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    monkeypatch.setenv("CONTAINER_PROVIDER", provider)
    with pytest.raises(ValidationError) as info:
        WorkerSettings()
    (err,) = info.value.errors()
    assert err["loc"] == ("AGC_CONTAINER_PROVIDER",)
    assert "docker" in err["msg"]


def test_agcluster_worker_stops_at_once_saying_which_setting(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGC_", "CONTAINER_"))}
    env.update(CONTAINER_PROVIDER="kubernetes", AGC_SECRET_KEY="x" * 24)
    proc = subprocess.run(
        [sys.executable, "-m", "agcluster.cli", "worker"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "agcluster: invalid AGC_CONTAINER_PROVIDER: Input should be 'docker'"
    ]


def test_a_bad_container_size_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINER_MEMORY_LIMIT", "lots")
    with pytest.raises(ValidationError, match="not a size"):
        ApiSettings()


def _config(limits: dict[str, object] | None) -> dict[str, object]:
    out: dict[str, object] = {"id": "x", "name": "X"}
    if limits is not None:
        out["resource_limits"] = limits
    return out


def test_container_limits_fill_only_what_a_config_leaves_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONTAINER_CPU_QUOTA", "150000")
    monkeypatch.setenv("CONTAINER_MEMORY_LIMIT", "3g")
    monkeypatch.setenv("CONTAINER_STORAGE_LIMIT", "7g")
    s = ApiSettings()

    none_set = with_container_defaults(parse_config(_config(None)), s).resource_limits
    assert (none_set.cpu_quota, none_set.memory_limit, none_set.storage_limit) == (
        150_000,
        "3g",
        "7g",
    )

    partly = with_container_defaults(
        parse_config(_config({"memory_limit": "1g", "pids_limit": 99})), s
    ).resource_limits
    assert (partly.cpu_quota, partly.memory_limit, partly.storage_limit) == (150_000, "1g", "7g")
    assert partly.pids_limit == 99

    explicit = {"cpu_quota": 100_000, "memory_limit": "2g", "storage_limit": "5g"}
    all_set = with_container_defaults(parse_config(_config(explicit)), s).resource_limits
    assert (all_set.cpu_quota, all_set.memory_limit, all_set.storage_limit) == (
        100_000,
        "2g",
        "5g",
    )
    # What the worker receives carries the filled limits.
    wire = with_container_defaults(parse_config(_config(None)), s).to_wire()
    assert wire["resource_limits"]["memory_limit"] == "3g"


def test_launch_timeout_means_one_thing(monkeypatch: pytest.MonkeyPatch) -> None:
    # AGC_LAUNCH_TIMEOUT is the API's (the whole launch); the worker's wait has its own name.
    monkeypatch.setenv("AGC_LAUNCH_TIMEOUT", "7")
    assert ApiSettings().launch_timeout == 7.0
    assert WorkerSettings().launch_timeout == 90.0
    monkeypatch.setenv("AGC_RUNNER_READY_TIMEOUT", "33")
    assert WorkerSettings().launch_timeout == 33.0
