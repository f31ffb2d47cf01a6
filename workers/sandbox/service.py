"""The worker's one handle on the sandbox boundary: serve, bind, meter, unbind, remove.

The worker calls :meth:`SandboxService.open` before it creates a container (the directory to
mount), :meth:`bind` when it sends the runner its ``init`` (the token and the config the
runner may see), :meth:`rebind` when it adopts a running session (the stored token hash),
:meth:`unbind` and :meth:`remove` when the session stops. Usage the gateway counts is kept
per session in memory (so a ``turn.completed`` can be stamped with the turn's real figures)
and handed to ``persist`` (the session's Redis record); refusals go to ``on_denied``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import structlog

from configs.model import AgentConfig, HttpMcpServer, McpServer, SseMcpServer
from workers.sandbox.egress import Denial, EgressProxy
from workers.sandbox.gateway import Gateway
from workers.sandbox.host import SandboxHost, new_sandbox_name
from workers.sandbox.policy import EgressPolicy, Resolver
from workers.sandbox.pricing import LIST_PRICES, ModelUsage, PriceTable
from workers.sandbox.registry import Binding, McpRoute, SandboxRegistry, new_token, token_hash

log = structlog.get_logger("agc.sandbox")

Persist = Callable[[str, ModelUsage, float], Awaitable[None]]
OnDenied = Callable[[Denial], None]


@dataclass
class _Meter:
    """A session's usage since its last finished turn."""

    usage: ModelUsage = field(default_factory=ModelUsage)
    cost: float = 0.0


@dataclass(frozen=True, slots=True)
class Bound:
    """What :meth:`SandboxService.bind` gives the worker for the runner's ``init``."""

    token: str
    token_sha256: str
    # The config as the runner may see it: remote MCP servers without headers or query.
    config: dict[str, Any]


class SandboxService:
    """Own the registry, gateway, egress proxy and socket directories of one worker."""

    def __init__(
        self,
        run_dir: Path,
        *,
        upstream: str,
        persist: Persist,
        on_denied: OnDenied,
        test_hosts: Mapping[str, tuple[str, int]] | None = None,
        prices: PriceTable = LIST_PRICES,
    ) -> None:
        self.registry = SandboxRegistry()
        self._prices = prices
        self._unpriced: set[str] = set()
        resolver = Resolver(dict(test_hosts or {}))
        self.gateway = Gateway(
            self.registry, upstream=upstream, resolver=resolver, on_usage=self._on_usage
        )
        self.egress = EgressProxy(self.registry, resolver=resolver, on_denied=on_denied)
        self.host = SandboxHost(run_dir, self.gateway, self.egress)
        self._persist = persist
        self._meters: dict[str, _Meter] = {}
        self._writes: set[asyncio.Task[None]] = set()

    async def aclose(self) -> None:
        """Stop serving (directories stay: containers keep running for the next worker)."""
        await self.host.aclose()
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=5.0)
        await self.gateway.aclose()

    # -- sandboxes -----------------------------------------------------------------------
    @staticmethod
    def new_name() -> str:
        return new_sandbox_name()

    async def open(self, name: str) -> Path:
        """Serve ``name``'s sockets; return the host directory to mount at ``/run/agc``."""
        return await self.host.open(name)

    async def remove(self, name: str) -> None:
        self.registry.unbind(name)
        await self.host.remove(name)

    async def hand_over(self, name: str) -> None:
        """Stop serving ``name``: another worker serves it now (it claimed our warm slot)."""
        self.registry.unbind(name)
        await self.host.stop_serving(name)

    # -- binding -------------------------------------------------------------------------
    def bind(self, name: str, session_id: str, api_key: str, config: AgentConfig) -> Bound:
        """Bind ``name`` to a session with a fresh token; return what the runner gets."""
        token = new_token()
        digest = token_hash(token)
        self._bind(name, session_id, digest, api_key, config)
        return Bound(token, digest, runner_config(config))

    def rebind(
        self, name: str, session_id: str, token_sha256: str, api_key: str, config: AgentConfig
    ) -> None:
        """Bind ``name`` again for a running runner whose token only its hash is known of."""
        self._bind(name, session_id, token_sha256, api_key, config)

    def _bind(
        self, name: str, session_id: str, digest: str, api_key: str, config: AgentConfig
    ) -> None:
        self.registry.bind(
            name,
            Binding(
                session_id=session_id,
                token_sha256=digest,
                api_key=api_key,
                egress=EgressPolicy.from_egress(config.egress),
                mcp=mcp_routes(config),
            ),
        )
        self._meters.setdefault(session_id, _Meter())

    def unbind(self, name: str, session_id: str) -> None:
        """Revoke the session's token at once (its sandbox answers 401 from now on)."""
        self.registry.unbind(name)
        self._meters.pop(session_id, None)

    # -- usage ---------------------------------------------------------------------------
    def _on_usage(self, session_id: str, model: str, usage: ModelUsage) -> None:
        if model not in self._unpriced and not self._prices.price_of(model).known:
            self._unpriced.add(model)
            log.warning(
                "no price for this model, using the default (set AGC_MODEL_PRICES)", model=model
            )
        cost = self._prices.cost_usd(model, usage)
        meter = self._meters.setdefault(session_id, _Meter())
        meter.usage = meter.usage.plus(usage)
        meter.cost += cost
        task = asyncio.get_running_loop().create_task(self._write(session_id, usage, cost))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, session_id: str, usage: ModelUsage, cost: float) -> None:
        try:
            await self._persist(session_id, usage, cost)
        except Exception as exc:  # Redis away: the figures still stamp the turn
            log.warning("usage write failed", session_id=session_id, error=str(exc))

    def take_turn_usage(self, session_id: str) -> tuple[ModelUsage, float]:
        """Return (and reset) what the session's model calls used since its last turn ended."""
        meter = self._meters.get(session_id)
        if meter is None:
            return ModelUsage(), 0.0
        self._meters[session_id] = _Meter()
        return meter.usage, meter.cost


def mcp_routes(config: AgentConfig) -> dict[str, McpRoute]:
    """The config's remote (sse/http) MCP servers, with their real URLs and headers."""
    return {
        name: McpRoute(spec.url, dict(spec.headers))
        for name, spec in config.mcp_servers.items()
        if isinstance(spec, SseMcpServer | HttpMcpServer)
    }


def runner_config(config: AgentConfig) -> dict[str, Any]:
    """The wire config without what the container must not see: remote MCP headers and
    queries (the gateway adds them back outside)."""
    return config.model_copy(
        update={"mcp_servers": {n: _unsecret(s) for n, s in config.mcp_servers.items()}}
    ).to_wire()


def _unsecret(spec: McpServer) -> McpServer:
    if not isinstance(spec, SseMcpServer | HttpMcpServer):
        return spec
    parts = urlsplit(spec.url)
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return spec.model_copy(update={"url": url, "headers": {}})
