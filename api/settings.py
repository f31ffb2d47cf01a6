"""API settings, read once from ``AGC_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from broker.settings import CommonSettings

REPO_ROOT = Path(__file__).resolve().parent.parent


class ApiSettings(CommonSettings):
    """Everything the API process can be told from its environment."""

    host: str = Field("127.0.0.1", description="Address the API listens on.")
    port: int = Field(8000, description="Port the API listens on.")
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
    sse_keepalive: float = Field(15.0, description="Seconds between SSE keep-alive comments.")
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
