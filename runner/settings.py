"""The runner's settings, read once from the environment (``AGC_*`` plus ``HOME``/``TMPDIR``).

The same mechanism as every other process (pydantic-settings): each field is read from
``AGC_<NAME>`` unless it names its variable; empty variables count as unset.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RunnerSettings(BaseSettings):
    """Everything the runner reads from its environment."""

    model_config = SettingsConfigDict(
        env_prefix="AGC_", extra="ignore", frozen=True, populate_by_name=True, env_ignore_empty=True
    )

    # The agent's working directory (the per-session workspace volume in the container).
    workspace: Path = Path("/workspace")
    # Where the CLI keeps config and transcripts ($HOME/.claude): a per-session volume, so
    # transcripts survive a runner restart and ``resume=`` works.
    home: Path = Field(default_factory=Path.home, validation_alias=AliasChoices("HOME"))
    # Scratch space for the CLI (tmpfs in the container).
    tmp_root: Path = Field(
        default_factory=lambda: Path(tempfile.gettempdir()),
        validation_alias=AliasChoices("TMPDIR"),
    )
    # Exit like ``stop`` when stdin reaches EOF (host tests); in a container a detached worker
    # must not end the session, so the default keeps running.
    exit_on_eof: bool = False
    # Envelopes kept for ``attach{after_seq}`` replays, bounded by count and by bytes.
    replay_buffer: int = 5000
    replay_buffer_bytes: int = 32 << 20
    # Seconds an interrupted turn may take to end before the CLI is killed and restarted.
    interrupt_grace: float = 10.0
    # Seconds ``stop``/SIGTERM waits for a running turn to end after interrupting it.
    stop_grace: float = 5.0
    # Seconds to wait for the CLI to exit on disconnect before giving up on it.
    disconnect_timeout: float = 15.0
    # Lines of the CLI's stderr kept for error details.
    stderr_lines: int = Field(500, validation_alias=AliasChoices("AGC_CLI_STDERR_LINES"))
    log_level: str = "INFO"
    # JSON log lines on stderr instead of console lines (stdout is the protocol either way).
    log_json: bool = False
    # Start the CLI (and so every tool of the agent) as this uid, through setpriv; None runs
    # it as the runner's own uid (host tests). The agent image sets 1000.
    agent_uid: int | None = None
    # Where the worker's per-sandbox sockets are mounted (gw.sock, egress.sock).
    sandbox_dir: Path = Path("/run/agc")

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @classmethod
    def from_env(cls) -> RunnerSettings:
        """Read the settings from the process environment."""
        return cls()
