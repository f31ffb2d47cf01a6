"""The provider interface: what a worker needs of the place its agent containers run.

Launch, reconcile, the RPC router and the file operations use only this interface, so a
provider can be swapped (Docker today; a warm pool, Fly Machines or Kubernetes later) and
the worker's logic tested without any engine (``tests/support/memory_provider.py``).

The attach stream carries the runner's stdout and stderr multiplexed in Docker's frame
format (1 byte stream id, 3 zero bytes, 4 bytes big-endian length, payload; see
``workers.channel``); a provider whose engine frames differently converts to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from configs.model import AgentConfig, field_errors
from workers.errors import LaunchFailed

# The image's unprivileged user, owner of the workspace files the worker writes.
AGENT_UID = "1000:1000"
WORKSPACE = "/workspace"
HOME = "/home/agent"


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerSpec:
    """What one session's container needs; limits already in the engine's units.

    Keyword-only, every field after the identity has a default: features add fields here
    (mounts, security options, storage limits) without touching the callers that do not
    set them.
    """

    session_id: str
    worker_id: str
    cluster: str
    image: str
    cpu_quota: int = 100_000
    memory: str = "2g"
    pids_limit: int = 256
    tmp_size: str = "512m"
    env: Mapping[str, str] = field(default_factory=dict)
    # The sandbox serving this container (``sbx-<hex>``) and its host directory, mounted
    # read-only at /run/agc: the model gateway's and egress proxy's sockets (workers/sandbox).
    sandbox: str = ""
    sandbox_dir: str = ""
    # The warm pool's key when this is a pool slot made before its session (workers/pool.py):
    # reconciliation leaves a slot nobody has claimed to the pool.
    pool: str = ""
    # storage_limit and the home's size in bytes: with a WorkspaceStorage (workers/storage.py)
    # each is a fixed-size filesystem; 0 (or no storage) is an engine volume, uncapped.
    storage_bytes: int = 0
    home_bytes: int = 0


def decode_config(config: Mapping[str, Any]) -> AgentConfig:
    """A wire config (``AgentConfig.to_wire``, as ``Launch.config`` carries it), decoded typed.

    Raises :class:`~workers.errors.LaunchFailed` (``bad_config``) naming the fields when the
    config does not decode: the API validated it, so that is a version skew, not user input.
    """
    try:
        return AgentConfig.from_wire(config)
    except ValidationError as exc:
        problems = "; ".join(f"{e['field'] or 'config'}: {e['message']}" for e in field_errors(exc))
        raise LaunchFailed(
            f"the agent config does not decode: {problems}", code="bad_config"
        ) from exc


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """One managed container as a listing sees it."""

    container_id: str
    session_id: str
    worker_id: str
    # "created", "running", "exited", ... (Docker's state names); only "running" is special.
    status: str
    # The sandbox the container was made with (its socket directory's name).
    sandbox: str = ""
    # The warm pool's key if the container was made as a pool slot ("" otherwise).
    pool: str = ""


Attached = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Provider(Protocol):
    """Create, start, attach to, list, inspect and remove one container per session."""

    async def create(self, spec: ContainerSpec) -> str:
        """Create (not start) a session's container and its volumes; return its id."""
        ...

    async def start(self, container_id: str) -> None:
        """Start a created or exited container (a fresh runner process)."""
        ...

    async def attach(self, container_id: str) -> Attached:
        """Attach to the container's stdio; attaching again after a detach must work."""
        ...

    async def is_running(self, container_id: str) -> bool: ...

    async def image_id(self, image: str) -> str:
        """The id of the image a tag names now ("" if missing): a rebuild changes it."""
        ...

    async def stats(self, container_id: str) -> dict[str, Any] | None:
        """``cpu_percent``, ``memory_bytes``, ``memory_limit_bytes``, ``pids``; None if not running."""
        ...

    async def list_managed(self, cluster: str) -> list[ContainerInfo]:
        """Every container of this cluster, running or not."""
        ...

    async def remove(
        self, container_id: str | None, session_id: str, *, grace: float = 5.0
    ) -> None:
        """Stop and remove a session's container and its volumes; missing parts are fine."""
        ...

    async def remove_session_container(self, session_id: str) -> None:
        """Remove a session's container if one exists, keeping its volumes."""
        ...

    async def volume_path(self, session_id: str) -> str:
        """Host path of the session's workspace; raises ``VolumeMissing`` when it is gone."""
        ...

    def close(self) -> None: ...
