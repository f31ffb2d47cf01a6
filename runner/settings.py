"""The runner's settings, read once from the environment (``AGC_*`` plus ``HOME``/``TMPDIR``)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, kw_only=True)
class RunnerSettings:
    """Everything the runner reads from its environment; see :meth:`from_env` for the names."""

    # The agent's working directory (the per-session workspace volume in the container).
    workspace: Path = Path("/workspace")
    # Where the CLI keeps config and transcripts ($HOME/.claude): a per-session volume, so
    # transcripts survive a runner restart and ``resume=`` works.
    home: Path = Path("/home/agent")
    # Scratch space for the CLI (tmpfs in the container).
    tmp_root: Path = Path("/tmp")  # noqa: S108 - the container's private tmpfs
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
    stderr_lines: int = 500
    log_level: str = "INFO"
    # Start the CLI (and so every tool of the agent) as this uid, through setpriv; None runs
    # it as the runner's own uid (host tests). The agent image sets 1000.
    agent_uid: int | None = None
    # Where the worker's per-sandbox sockets are mounted (gw.sock, egress.sock).
    sandbox_dir: Path = Path("/run/agc")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> RunnerSettings:
        """Read the settings from ``environ`` (default: ``os.environ``).

        ``AGC_WORKSPACE`` (default ``/workspace``), ``HOME``, ``TMPDIR`` (via ``tempfile``),
        ``AGC_EXIT_ON_EOF`` (``1`` to exit on stdin EOF), ``AGC_REPLAY_BUFFER`` (events),
        ``AGC_REPLAY_BUFFER_BYTES``,
        ``AGC_INTERRUPT_GRACE`` / ``AGC_STOP_GRACE`` / ``AGC_DISCONNECT_TIMEOUT`` (seconds),
        ``AGC_CLI_STDERR_LINES``, ``AGC_LOG_LEVEL``, ``AGC_AGENT_UID`` (run the CLI as this
        uid), ``AGC_SANDBOX_DIR`` (the mounted gateway sockets, default ``/run/agc``).
        """
        env = dict(os.environ if environ is None else environ)
        return cls(
            workspace=Path(env.get("AGC_WORKSPACE") or "/workspace"),
            home=Path(env.get("HOME") or str(Path.home())),
            tmp_root=Path(env.get("TMPDIR") or tempfile.gettempdir()),
            exit_on_eof=_flag(env.get("AGC_EXIT_ON_EOF")),
            replay_buffer=int(env.get("AGC_REPLAY_BUFFER") or 5000),
            replay_buffer_bytes=int(env.get("AGC_REPLAY_BUFFER_BYTES") or 32 << 20),
            interrupt_grace=float(env.get("AGC_INTERRUPT_GRACE") or 10.0),
            stop_grace=float(env.get("AGC_STOP_GRACE") or 5.0),
            disconnect_timeout=float(env.get("AGC_DISCONNECT_TIMEOUT") or 15.0),
            stderr_lines=int(env.get("AGC_CLI_STDERR_LINES") or 500),
            log_level=(env.get("AGC_LOG_LEVEL") or "INFO").upper(),
            agent_uid=int(env["AGC_AGENT_UID"]) if env.get("AGC_AGENT_UID") else None,
            sandbox_dir=Path(env.get("AGC_SANDBOX_DIR") or "/run/agc"),
        )
