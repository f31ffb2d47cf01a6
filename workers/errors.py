"""The workers' error tree."""

from __future__ import annotations


class WorkerError(Exception):
    """Base of every error a worker raises on purpose."""


class ProviderError(WorkerError):
    """The container provider (Docker) failed; the message says what it was doing."""


class ImageMissing(ProviderError):
    """The agent image is not on this host."""


class VolumeMissing(ProviderError):
    """A session's workspace volume does not exist (any more)."""


class RunnerGone(WorkerError):
    """The runner's stdio channel closed (the container stopped or the runner died)."""


class LaunchFailed(WorkerError):
    """A session could not be started; ``detail`` holds the underlying reason."""

    def __init__(self, message: str, detail: str = "", code: str = "launch_failed") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.code = code


class SlotFailed(WorkerError):
    """A warm-pool slot's runner could not start its CLI (the slot is removed)."""
