"""Worker settings, read once from ``AGC_*`` environment variables."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field

from broker.settings import CommonSettings


def _default_worker_id() -> str:
    return f"w-{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


class WorkerSettings(CommonSettings):
    """Everything a worker process can be told from its environment."""

    worker_id: str = Field(
        default_factory=_default_worker_id,
        description="Stable id of this worker; set it so a restarted worker re-attaches its sessions.",
    )
    cluster: str = Field(
        "agcluster",
        description=(
            "Name of this platform instance, set as a label on its containers: workers only "
            "adopt or remove containers of their own cluster, so several platforms can share "
            "one Docker engine."
        ),
    )
    agent_image: str = Field(
        "agcluster-agent:latest",
        validation_alias=AliasChoices("AGC_AGENT_IMAGE", "AGENT_IMAGE"),
        description="Docker image of agent containers.",
    )
    container_provider: Literal["docker"] = Field(
        "docker",
        validation_alias=AliasChoices("AGC_CONTAINER_PROVIDER", "CONTAINER_PROVIDER"),
        description=(
            "Where agent containers run. Only `docker` exists (workers/providers/); any other "
            "value stops the worker at start."
        ),
    )
    anthropic_base_url: str = Field(
        "",
        validation_alias=AliasChoices("AGC_ANTHROPIC_BASE_URL", "ANTHROPIC_BASE_URL"),
        description=(
            "Where this worker's model gateway sends model requests (default "
            "https://api.anthropic.com); a loopback URL works, the gateway runs on the host."
        ),
    )
    run_dir: Path = Field(
        Path("/run/agc"),
        description=(
            "Host directory of the per-sandbox socket directories (model gateway, egress "
            "proxy) mounted at /run/agc in agent containers."
        ),
    )
    egress_test_hosts: str = Field(
        "",
        description=(
            "Tests only, off by default: `name=127.0.0.1:PORT,...` lets the egress proxy and "
            "remote MCP servers reach these names on loopback ports. Never set in production."
        ),
    )
    max_sessions: int = Field(50, description="Most sessions this worker runs at once.")
    launch_concurrency: int = Field(
        4,
        description=(
            "Cold launches (a new container) this worker starts at once; a warm-pool launch "
            "never waits for one of these turns."
        ),
    )
    placement_defer: float = Field(
        0.5,
        gt=0,
        description=(
            "Seconds between brief looks at the launch queue while a live peer with room "
            "carries fewer sessions: launches go to the least loaded worker, and reach a "
            "busier one within this time only when no lighter peer takes them."
        ),
    )
    # Not AGC_LAUNCH_TIMEOUT: that is the API's (how long a client's launch may take in all).
    runner_ready_timeout: float = Field(
        90.0, description="Seconds a runner has to become ready once its container started."
    )
    heartbeat_interval: float = Field(2.0, description="Seconds between liveness refreshes.")
    heartbeat_ttl: float = Field(
        8.0, description="Seconds a worker counts as alive without a refresh."
    )
    lost_host_timeout: float = Field(
        30.0,
        ge=0,
        description=(
            "Seconds a dead worker's sessions wait to be adopted before they are failed as "
            "lost (its host is gone: no live worker can see their containers). A session of "
            "a lost host ends within heartbeat_ttl + this + two reconcile passes (<= 5 s each)."
        ),
    )
    session_idle_timeout: float = Field(
        1800.0,
        validation_alias=AliasChoices("AGC_SESSION_IDLE_TIMEOUT", "SESSION_IDLE_TIMEOUT"),
        description="Seconds without real use (chat, upload) after which a session is stopped.",
    )
    session_cleanup_interval: float = Field(
        300.0,
        validation_alias=AliasChoices("AGC_SESSION_CLEANUP_INTERVAL", "SESSION_CLEANUP_INTERVAL"),
        description="Seconds between idle-session sweeps.",
    )
    drain_timeout: float = Field(20.0, description="Seconds SIGTERM waits for in-flight work.")
    max_deliveries: int = Field(
        3, description="Deliveries of a command before it is given up with an error event."
    )
    tmp_size: str = Field("512m", description="Size of each container's /tmp tmpfs.")
    storage_quota: bool = Field(
        True,
        description=(
            "Enforce each config's storage_limit with a fixed-size ext4 filesystem per "
            "workspace (loop-mounted; needs root, mkfs.ext4, loop devices and the worker on "
            "the Docker host). Off, or unavailable: engine volumes, uncapped."
        ),
    )
    storage_dir: Path | None = Field(
        None, description="Where workspace filesystems live (default <state dir>/storage)."
    )
    home_size: str = Field("1g", description="Size of each session's home filesystem.")
    approval_timeout: float = Field(
        600.0,
        gt=0,
        description=(
            "Seconds a tool call that needs a person's approval waits for an answer before it "
            "is denied (the model is told why)."
        ),
    )
    pool_size: int = Field(
        1,
        ge=0,
        description=(
            "Warm slots this worker keeps ready for each config in `AGC_POOL_CONFIGS`: started, "
            "locked-down sandboxes with the runner up and the CLI started (0: no warm pool). "
            "Each idle slot holds ~150 MiB: 1-2 suit one small machine."
        ),
    )
    pool_configs: str = Field(
        "code-assistant",
        description=(
            "Comma-separated preset ids the warm pool keeps slots for (empty: no warm pool). "
            "The default keeps one slot of the most used preset."
        ),
    )
    pool_max_idle: float = Field(
        3600.0, description="Seconds a warm slot may wait for a launch before it is remade."
    )
    pool_pause: float = Field(
        1.0,
        description=(
            "Seconds between two slot starts while the pool refills (pacing: a refill never "
            "competes with launches for the CPU all at once)."
        ),
    )
    model_prices: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description=(
            "Prices the gateway's cost figures use, added to and overriding the built-in "
            'table: JSON `{"model id prefix": [input, output]}` in USD per million tokens, '
            'e.g. `{"claude-opus-5": [5, 25]}`. The longest matching prefix wins.'
        ),
    )
    metrics_port: int = Field(
        0, description="Port of this worker's Prometheus `/metrics` on 127.0.0.1 (0: off)."
    )

    def pooled_configs(self) -> list[str]:
        """The preset ids of ``pool_configs``, in order, without blanks or repeats."""
        ids = (part.strip() for part in self.pool_configs.split(","))
        return list(dict.fromkeys(i for i in ids if i))

    @property
    def launch_timeout(self) -> float:
        """How long launch and resume wait for a runner (``runner_ready_timeout``)."""
        return self.runner_ready_timeout
