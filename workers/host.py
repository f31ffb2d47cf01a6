"""What a session, the RPC router and the file operations may use of their worker.

These Protocols are the only way those parts reach the worker's shared clients, so none of
them imports the worker (or each other) and each can be built in a test from what it needs.
:class:`workers.registry.Registry` implements them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from broker.pool import SlotRecord
from broker.state import SessionStore
from workers.metrics import WorkerMetrics
from workers.providers.base import Provider
from workers.sandbox.service import SandboxService
from workers.settings import WorkerSettings


class SessionRef(Protocol):
    """A session as request handlers see it: which session, which container."""

    @property
    def session_id(self) -> str: ...

    @property
    def container_id(self) -> str: ...


class Host(Protocol):
    """The clients and settings a worker shares with its parts."""

    @property
    def worker_id(self) -> str: ...

    @property
    def settings(self) -> WorkerSettings: ...

    @property
    def nc(self) -> NATS: ...

    @property
    def js(self) -> JetStreamContext: ...

    @property
    def store(self) -> SessionStore: ...

    @property
    def provider(self) -> Provider: ...

    @property
    def metrics(self) -> WorkerMetrics: ...

    @property
    def sandbox(self) -> SandboxService:
        """The sandbox boundary this worker serves (gateway, egress proxy, socket dirs)."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a background task the worker keeps (and cancels on shutdown)."""
        ...


class WarmSlots(Protocol):
    """The warm pool (:class:`workers.pool.WarmPool`) as the launcher, upkeep and shutdown use it."""

    @property
    def ready(self) -> int:
        """Slots ready for a launch now."""
        ...

    @property
    def size(self) -> int:
        """Slots the pool aims to keep."""
        ...

    def memory_bytes(self) -> int: ...

    async def take(self, sid: str) -> SlotRecord | None:
        """The slot a launch of ``sid`` claimed, if still fit for it (only one caller gets it)."""
        ...

    async def run(self) -> None: ...

    async def drain(self) -> None: ...
