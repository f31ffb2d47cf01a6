"""Settings of ``agcluster up`` (the local stack), read once from ``AGC_*`` environment variables."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class UpSettings(BaseSettings):
    """Where the local stack keeps its state, which ports it takes and how it supervises."""

    model_config = SettingsConfigDict(env_prefix="AGC_", extra="ignore", frozen=True)

    state_dir: Path = Field(Path(".agc"), description="NATS/Redis data, logs, the secret.")
    host: str = Field("127.0.0.1", description="Address the API listens on.")
    port: int = Field(8000, ge=0, le=65535, description="API port; 0 picks a free one.")
    nats_port: int = Field(
        4222, ge=0, le=65535, description="NATS client port (first node's); 0 picks free ones."
    )
    redis_port: int = Field(
        6379, ge=0, le=65535, description="Redis TCP port; 0 serves a unix socket only."
    )
    workers: int = Field(1, ge=0, description="Worker processes `agcluster up` runs.")
    worker_id: str = Field(
        "", description="Id of the worker when there is one (default local-1; several: local-N)."
    )
    secret_key: SecretStr = Field(
        SecretStr(""), description="Shared secret; generated into the state dir when empty."
    )
    config_dir: Path | None = Field(None, description="Custom configs (default: state/configs).")
    nats_cluster: int = Field(
        1, ge=1, description="nats-server processes: 1, or 3+ for a JetStream cluster."
    )
    nats_cluster_port: int = Field(
        6222, ge=0, le=65535, description="First node's route port; 0 picks free ones."
    )
    nats_replicas: int = Field(
        0, ge=0, le=5, description="Stream replicas; 0: 3 on a cluster of 3+, else 1."
    )
    nats_sync_interval: str = Field(
        "",
        description=(
            "JetStream fsync interval (`always`, `1s`, …; empty: the server's default, 2m). "
            "See docs/nats-cluster.md."
        ),
    )
    restart_backoff: float = Field(
        0.2, gt=0, description="Seconds before the second restart in a row (doubles each time)."
    )
    restart_backoff_max: float = Field(10.0, gt=0, description="Longest wait between restarts.")
    crash_loop_exits: int = Field(
        5, ge=2, description="This many exits of one process within the window: it is a loop."
    )
    crash_loop_window: float = Field(60.0, gt=0, description="Seconds of the crash-loop window.")
    log_level: str = Field("INFO", description="Log level of `agcluster up` itself.")
    log_json: bool = Field(False, description="Log JSON lines instead of console output.")
    # Not AGC_STOP_TIMEOUT: that one is the API's (how long DELETE waits for a session).
    shutdown_timeout: float = Field(
        25.0, gt=0, description="Seconds each process has to stop on SIGTERM before SIGKILL."
    )

    @field_validator("nats_sync_interval")
    @classmethod
    def _sync_interval(cls, value: str) -> str:
        if value and not re.fullmatch(r"always|\d+(ms|s|m|h)", value):
            raise ValueError("use `always` or a duration such as 100ms, 1s, 2m")
        return value

    @model_validator(mode="after")
    def _cluster_shape(self) -> UpSettings:
        if self.nats_cluster == 2:
            raise ValueError("AGC_NATS_CLUSTER must be 1 or 3+ (two nodes cannot keep a quorum)")
        if self.replicas > self.nats_cluster:
            raise ValueError(
                f"AGC_NATS_REPLICAS={self.nats_replicas} needs at least that many NATS nodes "
                f"(AGC_NATS_CLUSTER={self.nats_cluster})"
            )
        return self

    @property
    def replicas(self) -> int:
        if self.nats_replicas:
            return self.nats_replicas
        return 3 if self.nats_cluster >= 3 else 1
