"""Settings every AgCluster process shares, read once from ``AGC_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """Connection and secret settings shared by the API and the workers."""

    # populate_by_name: fields with aliases (the original AgCluster's names) still take
    # their field name as a keyword, as every other field does.
    model_config = SettingsConfigDict(
        env_prefix="AGC_", extra="ignore", frozen=True, populate_by_name=True
    )

    nats_url: str = Field(
        "nats://127.0.0.1:4222", description="NATS server URL(s), comma-separated."
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL.")
    redis_prefix: str = Field("agc", description="Prefix of every Redis key the platform owns.")
    # Credentials and TLS for the bus and the store (`agcluster credentials` writes them into
    # per-role env files); a user/password in the URLs works too.
    nats_user: str = Field("", description="NATS user of this process's role.")
    nats_password: SecretStr = Field(SecretStr(""), description="Password of `nats_user`.")
    nats_tls_ca: Path | None = Field(None, description="CA file that signed NATS's certificate.")
    nats_tls_cert: Path | None = Field(None, description="Client certificate for NATS (mTLS).")
    nats_tls_key: Path | None = Field(None, description="Key of `nats_tls_cert`.")
    redis_user: str = Field("", description="Redis ACL user.")
    redis_password: SecretStr = Field(SecretStr(""), description="Password of `redis_user`.")
    redis_tls_ca: Path | None = Field(None, description="CA file that signed Redis's certificate.")
    redis_tls_cert: Path | None = Field(None, description="Client certificate for Redis (mTLS).")
    redis_tls_key: Path | None = Field(None, description="Key of `redis_tls_cert`.")
    secret_key: SecretStr = Field(
        SecretStr(""),
        description=(
            "Shared secret (16+ chars) sealing API keys and MCP credentials on the bus and in "
            "Redis. API and workers must use the same value. `agcluster up` generates one."
        ),
    )
    state_dir: Path = Field(Path(".agc"), description="Where local state and data live.")
    events_max_age_days: float = Field(7.0, description="How long session events are kept.")
    nats_replicas: int = Field(
        1,
        ge=1,
        le=5,
        description=(
            "Replicas of every stream and object store (3 on a three-node JetStream cluster: "
            "see docs/nats-cluster.md). Existing streams are scaled to it at start-up."
        ),
    )
    log_level: str = Field("INFO", description="Log level.")
    log_json: bool = Field(False, description="Log JSON lines instead of console output.")

    def secret(self) -> str:
        value = self.secret_key.get_secret_value()
        if len(value) < 16:
            raise RuntimeError(
                "AGC_SECRET_KEY is not set (or shorter than 16 characters); "
                "API and workers need the same secret to seal API keys"
            )
        return value
