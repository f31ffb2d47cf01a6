"""Fixtures: a worker-side sandbox host (gateway + egress proxy on real unix sockets) and the
runner's forwarder in front of it, all in this process on real sockets."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from broker.sandbox_wire import EGRESS_SOCKET, GATEWAY_SOCKET, ROUTE_EGRESS, ROUTE_MODEL
from runner.forwarder import Forwarder
from tests.modelserver.fixture import model_server  # noqa: F401  (fixture)
from workers.sandbox.egress import Denial, EgressProxy
from workers.sandbox.gateway import Gateway
from workers.sandbox.host import SandboxHost, new_sandbox_name
from workers.sandbox.policy import EgressPolicy, Resolver
from workers.sandbox.pricing import ModelUsage
from workers.sandbox.registry import Binding, McpRoute, SandboxRegistry, new_token, token_hash

API_KEY = "sk-ant-api03-the-real-key-" + "x" * 20


@dataclass
class Harness:
    """A sandbox host with a recorder of the usage and denials it reports."""

    host: SandboxHost
    registry: SandboxRegistry
    usage: list[tuple[str, str, ModelUsage]] = field(default_factory=list)
    denials: list[Denial] = field(default_factory=list)
    forwarders: list[Forwarder] = field(default_factory=list)

    async def sandbox(
        self,
        session_id: str | None = "sess-1",
        *,
        egress: EgressPolicy | None = None,
        mcp: dict[str, McpRoute] | None = None,
        api_key: str = API_KEY,
    ) -> Sandbox:
        """Open a sandbox (bound to ``session_id`` unless None) and its forwarders."""
        name = new_sandbox_name()
        path = await self.host.open(name)
        token = new_token()
        if session_id is not None:
            self.registry.bind(
                name,
                Binding(
                    session_id=session_id,
                    token_sha256=token_hash(token),
                    api_key=api_key,
                    egress=egress or EgressPolicy(),
                    mcp=mcp or {},
                ),
            )
        return Sandbox(self, name, path, token)

    async def forwarder(self, path: Path, token: str, route: str) -> Forwarder:
        sock = path / (EGRESS_SOCKET if route == ROUTE_EGRESS else GATEWAY_SOCKET)
        fwd = Forwarder(sock, token, route)
        await fwd.start()
        self.forwarders.append(fwd)
        return fwd


@dataclass
class Sandbox:
    h: Harness
    name: str
    path: Path
    token: str

    async def model_url(self, token: str | None = None) -> str:
        return (await self.h.forwarder(self.path, token or self.token, ROUTE_MODEL)).url

    async def proxy_url(self, token: str | None = None) -> str:
        return (await self.h.forwarder(self.path, token or self.token, ROUTE_EGRESS)).url

    async def mcp_url(self, server: str) -> str:
        return (await self.h.forwarder(self.path, self.token, f"mcp:{server}")).url


@pytest.fixture
def run_dir() -> Iterator[Path]:
    # Short: a unix socket path must fit in 108 bytes.
    path = Path(tempfile.mkdtemp(prefix="agc-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def make_harness(run_dir: Path) -> AsyncIterator[object]:
    made: list[Harness] = []

    async def make(
        upstream: str = "", test_hosts: dict[str, tuple[str, int]] | None = None
    ) -> Harness:
        registry = SandboxRegistry()
        resolver = Resolver(test_hosts or {})
        harness: Harness
        gateway = Gateway(
            registry,
            upstream=upstream,
            resolver=resolver,
            on_usage=lambda sid, model, u: harness.usage.append((sid, model, u)),
            max_body=1 << 20,
        )
        egress = EgressProxy(
            registry, resolver=resolver, on_denied=lambda d: harness.denials.append(d)
        )
        harness = Harness(SandboxHost(run_dir, gateway, egress), registry)
        made.append(harness)
        return harness

    yield make
    for h in made:
        for f in h.forwarders:
            await f.close()
        await h.host.aclose()
        await h.host.gateway.aclose()
