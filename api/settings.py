"""API settings, read once from ``AGC_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator

from broker.settings import CommonSettings
from configs.model import parse_size

REPO_ROOT = Path(__file__).resolve().parent.parent


class ApiSettings(CommonSettings):
    """Everything the API process can be told from its environment."""

    # The original AgCluster's names (API_HOST, API_PORT, API_DEBUG, CONTAINER_*) are read too;
    # an alias never needs the AGC_ prefix, so each lists the AGC_ name first.
    host: str = Field(
        "127.0.0.1",
        validation_alias=AliasChoices("AGC_HOST", "API_HOST"),
        description="Address the API listens on.",
    )
    port: int = Field(
        8000,
        validation_alias=AliasChoices("AGC_PORT", "API_PORT"),
        description="Port the API listens on.",
    )
    debug: bool = Field(
        False,
        validation_alias=AliasChoices("AGC_DEBUG", "API_DEBUG"),
        description="Log at DEBUG level. Error responses never carry tracebacks either way.",
    )
    container_cpu_quota: int = Field(
        200_000,
        ge=10_000,
        validation_alias=AliasChoices("AGC_CONTAINER_CPU_QUOTA", "CONTAINER_CPU_QUOTA"),
        description="CPU of a session whose config sets no `cpu_quota` (100000 = 1 CPU).",
    )
    container_memory_limit: str = Field(
        "4g",
        validation_alias=AliasChoices("AGC_CONTAINER_MEMORY_LIMIT", "CONTAINER_MEMORY_LIMIT"),
        description="Memory of a session whose config sets no `memory_limit`.",
    )
    container_storage_limit: str = Field(
        "10g",
        validation_alias=AliasChoices("AGC_CONTAINER_STORAGE_LIMIT", "CONTAINER_STORAGE_LIMIT"),
        description="Workspace size of a session whose config sets no `storage_limit`.",
    )
    config_dir: Path = Field(
        Path(".agc/configs"), description="Directory of custom agent configs (YAML)."
    )
    web_dir: Path = Field(
        REPO_ROOT / "web" / "dist", description="Built dashboard served at `/` (if present)."
    )
    launch_timeout: float = Field(120.0, description="Seconds a launch may take before 504.")
    chat_timeout: float = Field(
        900.0, description="Seconds a JSON (non-streaming) chat waits for its turn to finish."
    )
    stop_timeout: float = Field(30.0, description="Seconds DELETE waits for a session to stop.")
    failover_timeout: float = Field(
        15.0,
        gt=0,
        description=(
            "Seconds a request keeps retrying NATS through a failover (a node restarting, a "
            "stream electing a leader) before it answers 503."
        ),
    )
    sse_keepalive: float = Field(15.0, description="Seconds between SSE keep-alive comments.")
    # Fan-out (api/agents/hub.py): memory stays under about sse_cache_total_bytes plus
    # sse_max_clients x sse_client_queue references plus each socket's send buffer.
    sse_max_clients: int = Field(
        10_000, ge=1, description="Most SSE streams one API process serves; beyond: 503."
    )
    sse_max_sessions: int = Field(
        1_000, ge=1, description="Most sessions one API process follows at once; beyond: 503."
    )
    sse_client_queue: int = Field(
        2_000,
        ge=1,
        description=(
            "Events a client may fall behind before its stream is ended with an `error` "
            "event (`slow_consumer`); it can resume with Last-Event-ID."
        ),
    )
    sse_cache_bytes: int = Field(
        1 << 20, ge=0, description="Newest events kept in memory per followed session (bytes)."
    )
    sse_cache_total_bytes: int = Field(
        256 << 20, ge=0, description="Bytes of cached events across all followed sessions."
    )
    sse_max_replays: int = Field(
        32,
        ge=1,
        description="Clients reading events older than the cache from JetStream at once.",
    )
    sse_linger: float = Field(
        10.0, ge=0, description="Seconds a session stays followed after its last client left."
    )
    max_body_bytes: int = Field(
        1_048_576, description="Largest JSON request body (uploads have their own limits)."
    )
    upload_max_bytes: int = Field(
        50 * 1024 * 1024, description="Largest single uploaded file (`AGC_UPLOAD_MAX_BYTES`)."
    )
    upload_max_total_bytes: int = Field(
        200 * 1024 * 1024, description="Largest total size of one upload request."
    )
    upload_max_files: int = Field(100, description="Most files in one upload request.")
    preview_max_bytes: int = Field(
        512 * 1024, description="Text previews beyond this are truncated (flagged)."
    )
    # -- the perimeter (api/browser.py, api/operator.py, api/limits.py) ---------------------
    operator_token: SecretStr = Field(
        SecretStr(""),
        description=(
            "Token that custom-config writes need (`Authorization: Bearer …`); unset, writes "
            "are refused. `agcluster up` generates one into its state dir."
        ),
    )
    cors_origins: str = Field(
        "",
        description=(
            "Comma-separated origins (`https://app.example.com`) allowed to call the API from "
            "a browser; empty: only the dashboard the API serves itself."
        ),
    )
    openapi_viewers: bool = Field(
        False,
        description=(
            "Serve the interactive OpenAPI viewers under /schema (they load scripts from a "
            "CDN); the JSON and YAML documents are always served."
        ),
    )
    # Ceilings on what a config may ask for (api/limits.py): above one, 422 naming the field.
    max_cpu_quota: int = Field(
        400_000, ge=10_000, description="Most CPU a session may have (100000 = 1 CPU)."
    )
    max_memory: str = Field("8g", description="Most memory a session may have.")
    max_pids: int = Field(4096, ge=32, description="Most processes a session may run.")
    max_storage: str = Field("20g", description="Largest workspace a session may have.")
    # Use limits: beyond them 429 (503 when the workers are full), with Retry-After.
    max_live_sessions: int = Field(
        20, ge=0, description="Most live sessions on the platform (0: no limit)."
    )
    max_sessions_per_key: int = Field(
        5, ge=0, description="Most live sessions one API key may have (0: no limit)."
    )
    launch_rate: int = Field(
        10, ge=0, description="Launches one API key may make per `launch_rate_window` (0: off)."
    )
    launch_rate_window: float = Field(60.0, gt=0, description="Seconds of the launch rate.")
    max_streams_per_key: int = Field(
        16,
        ge=0,
        description=(
            "Open SSE streams one API key may hold, across every API process (0: no cap)."
        ),
    )
    retry_after: int = Field(
        5, ge=1, description="`Retry-After` seconds when a session limit or capacity is hit."
    )

    @field_validator("container_memory_limit", "container_storage_limit")
    @classmethod
    def _size(cls, value: str) -> str:
        try:
            parse_size(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a size such as 512m or 4g") from None
        return value
