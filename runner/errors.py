"""The runner's error tree and how SDK/CLI failures map to ``error`` event codes.

Codes a worker may see in ``error.code``: ``bad_command`` (unparseable stdin line),
``not_initialized`` (chat before ``init``), ``already_initialized``, ``bad_config`` (fatal: the
config cannot become SDK options), ``connect_failed`` (the CLI did not start; retried on the
next chat), ``resume_failed`` (the transcript to resume is gone; a fresh conversation starts),
``cli_exited`` / ``cli_error`` / ``cli_unavailable`` / ``cli_protocol`` / ``sdk_error`` (the
client died; the next chat reconnects with ``resume=``), ``interrupt_timeout`` (the CLI did not
end an interrupted turn in time and was restarted), ``api_error`` (the model API failed; the
CLI's own category such as ``server_error`` or ``authentication_failed`` when it gives one),
and ``error_max_turns`` / ``error_during_execution`` / ... (a result subtype the CLI reported).
"""

from __future__ import annotations


class RunnerError(Exception):
    """Base of the runner's own errors; ``code`` becomes the ``error`` event's code."""

    code = "runner_error"


class ConfigError(RunnerError):
    """The agent config cannot be turned into SDK options."""

    code = "bad_config"


class ConnectError(RunnerError):
    """The SDK client could not connect; ``detail`` holds the CLI's stderr."""

    code = "connect_failed"

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


def classify(exc: BaseException) -> str:
    """Return the ``error`` event code for an exception raised by the SDK or the runner."""
    # Imported here: this module is read before the SDK is (runner.early, at start-up).
    from claude_agent_sdk import (
        ClaudeSDKError,
        CLIConnectionError,
        CLIJSONDecodeError,
        ProcessError,
        ResultError,
    )

    if isinstance(exc, RunnerError):
        return exc.code
    if isinstance(exc, ResultError):
        return "cli_error"
    if isinstance(exc, ProcessError):
        return "cli_exited"
    if isinstance(exc, CLIConnectionError):
        return "cli_unavailable"
    if isinstance(exc, CLIJSONDecodeError):
        return "cli_protocol"
    if isinstance(exc, ClaudeSDKError):
        return "sdk_error"
    return "runner_error"


def describe(exc: BaseException) -> str:
    """Return a one-paragraph human message for an exception (never a traceback)."""
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
