"""Per-sandbox host directories and the two unix sockets served in each.

``<run_dir>/<sandbox>/`` (mode 0700, owned by the worker's uid: root) is bind-mounted at
``/run/agc`` in the sandbox's container. Its runner runs as uid 0 there without
``CAP_DAC_OVERRIDE``, so it reaches the sockets as their owner, while the agent's uid (1000)
cannot even list the directory. Both sockets are mode 0600.

Closing a worker stops serving but leaves the directory (the container still has it mounted
and a restarted or adopting worker serves it again); removing a sandbox deletes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from broker.sandbox_wire import EGRESS_SOCKET, GATEWAY_SOCKET
from workers.sandbox.egress import EgressProxy
from workers.sandbox.gateway import Gateway

log = structlog.get_logger("agc.sandbox")

Reader = asyncio.StreamReader
Writer = asyncio.StreamWriter
Handler = Callable[[str, Reader, Writer], Awaitable[None]]
_NAME = re.compile(r"sbx-[a-z0-9]{8,40}")


def new_sandbox_name() -> str:
    """Return a fresh sandbox name (a short path component: unix socket paths are bounded)."""
    return f"sbx-{secrets.token_hex(8)}"


def check_sandbox_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"bad sandbox name {name!r}")
    return name


class SandboxHost:
    """Create, serve and remove sandbox directories under ``run_dir``."""

    def __init__(self, run_dir: Path, gateway: Gateway, egress: EgressProxy) -> None:
        self.run_dir = run_dir
        self.gateway = gateway
        self.egress = egress
        self._servers: dict[str, list[asyncio.Server]] = {}
        self._conns: set[asyncio.Task[None]] = set()

    def host_dir(self, name: str) -> Path:
        return self.run_dir / check_sandbox_name(name)

    def serving(self, name: str) -> bool:
        return name in self._servers

    async def open(self, name: str) -> Path:
        """Create (or take over) ``name``'s directory and serve its sockets; return the dir."""
        path = self.host_dir(name)
        if name in self._servers:
            return path
        self.run_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
        servers = []
        for sock, handler in (
            (GATEWAY_SOCKET, self.gateway.serve),
            (EGRESS_SOCKET, self.egress.serve),
        ):
            sock_path = path / sock
            # A socket file left by a worker that is gone: take it over.
            with contextlib.suppress(FileNotFoundError):
                sock_path.unlink()
            server = await asyncio.start_unix_server(
                self._serve(name, handler), path=str(sock_path), limit=64 << 10
            )
            os.chmod(sock_path, 0o600)
            servers.append(server)
        self._servers[name] = servers
        return path

    def _serve(self, name: str, handler: Handler) -> Callable[[Reader, Writer], Awaitable[None]]:
        async def on_connection(reader: Reader, writer: Writer) -> None:
            task = asyncio.current_task()
            if task is not None:
                self._conns.add(task)
                task.add_done_callback(self._conns.discard)
            # Cancelled by aclose(): end quietly (asyncio reports a cancelled callback task).
            with contextlib.suppress(asyncio.CancelledError):
                await handler(name, reader, writer)

        return on_connection

    async def stop_serving(self, name: str) -> None:
        """Stop listening on ``name``'s sockets (connections in flight end on their own)."""
        for server in self._servers.pop(name, []):
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)

    async def remove(self, name: str) -> None:
        """Stop serving ``name`` and delete its directory."""
        await self.stop_serving(name)
        with contextlib.suppress(ValueError):
            shutil.rmtree(self.host_dir(name), ignore_errors=True)

    async def aclose(self) -> None:
        """Stop serving every sandbox (directories stay for the next worker); end connections."""
        for name in list(self._servers):
            await self.stop_serving(name)
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
