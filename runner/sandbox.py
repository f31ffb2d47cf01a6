"""The runner's side of the sandbox boundary: what the CLI is started with, and as whom.

In a container (``AGC_AGENT_UID`` set, the image does it) the runner is uid 0 with only
SETUID/SETGID/KILL capabilities, and starts the CLI, and so every tool the agent runs, as the
agent's uid through ``runner/bin/agent-cli`` (``setpriv``): that uid cannot read the runner's
environment or memory, nor write into its stdout (the worker's channel).

With a session token in ``init`` and the worker's sockets mounted (``AGC_SANDBOX_DIR``,
default ``/run/agc``), the CLI's only ways out are this process's forwarders on the
container's loopback (:class:`~runner.forwarder.Forwarder`): ``ANTHROPIC_BASE_URL`` (the model
gateway; the CLI holds a placeholder key, the gateway adds the real one), ``HTTP(S)_PROXY``
(the egress proxy), and one URL per remote MCP server (the gateway adds its headers). The MCP
configuration goes to the CLI as a file, never as a JSON argument, because every process's
argv is visible on the host.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import socket
import tempfile
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from broker.runner_wire import Init
from broker.sandbox_wire import (
    EGRESS_SOCKET,
    GATEWAY_SOCKET,
    MCP_PREFIX,
    ROUTE_EGRESS,
    ROUTE_MODEL,
)
from runner.forwarder import Forwarder
from runner.settings import RunnerSettings

if TYPE_CHECKING:
    # Types only: runner.early reads this module before the SDK is imported.
    from claude_agent_sdk import ClaudeAgentOptions

log = logging.getLogger("runner.sandbox")

# What the CLI holds instead of a key: the gateway ignores it and adds the session's key.
PLACEHOLDER_KEY = "agc-sandbox-gateway-holds-the-key"
AGENT_CLI = Path(__file__).parent / "bin" / "agent-cli"
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")


def bundled_cli() -> str:
    """Path of the Claude Code CLI bundled with the SDK (else the one on PATH)."""
    # Found, not imported: importing the SDK takes ~0.3 s (runner.early runs before that).
    spec = find_spec("claude_agent_sdk")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(folder) / "_bundled" / "claude"
        if bundled.is_file():
            return str(bundled)
    found = shutil.which("claude")
    if found is None:
        raise FileNotFoundError("the Claude Code CLI is not installed")
    return found


class SandboxLink:
    """The forwarders of one session; :meth:`start` opens them, :meth:`close` ends them."""

    def __init__(self, mount: Path, token: str) -> None:
        self.mount = mount
        self.token = token
        # Listening sockets made before the event loop (runner.early), by route.
        self.listeners: dict[str, socket.socket] = {}
        self.model: Forwarder | None = None
        self.egress: Forwarder | None = None
        self.mcp: dict[str, Forwarder] = {}

    @classmethod
    def for_init(cls, init: Init, settings: RunnerSettings) -> SandboxLink | None:
        """A link when the worker sent a token and its sockets are mounted; else None (host)."""
        if not init.gateway_token:
            return None
        if not (settings.sandbox_dir / GATEWAY_SOCKET).exists():
            log.warning("a gateway token but no socket in %s", settings.sandbox_dir)
            return None
        return cls(settings.sandbox_dir, init.gateway_token)

    @classmethod
    def for_prestart(cls, settings: RunnerSettings) -> SandboxLink | None:
        """A link without a token yet (a warm-pool runner); :meth:`bind` gives it one."""
        if not (settings.sandbox_dir / GATEWAY_SOCKET).exists():
            return None
        return cls(settings.sandbox_dir, "")

    def bind(self, token: str) -> None:
        """Carry the session's token on every forwarder from now on."""
        self.token = token
        for fwd in (self.model, self.egress, *self.mcp.values()):
            if fwd is not None:
                fwd.set_token(token)

    async def start(self, remote_mcp: list[str]) -> None:
        """Listen for the model, the proxy and each remote MCP server (idempotent)."""
        if self.model is None:
            self.model = Forwarder(
                self.mount / GATEWAY_SOCKET,
                self.token,
                ROUTE_MODEL,
                self.listeners.pop(ROUTE_MODEL, None),
            )
            await self.model.start()
        if self.egress is None:
            self.egress = Forwarder(
                self.mount / EGRESS_SOCKET,
                self.token,
                ROUTE_EGRESS,
                self.listeners.pop(ROUTE_EGRESS, None),
            )
            await self.egress.start()
        for name in remote_mcp:
            if name not in self.mcp:
                fwd = Forwarder(self.mount / GATEWAY_SOCKET, self.token, MCP_PREFIX + name)
                await fwd.start()
                self.mcp[name] = fwd

    def env(self) -> dict[str, str]:
        assert self.model is not None and self.egress is not None
        return link_env(self.model.url, self.egress.url)

    def mcp_url(self, name: str, url: str) -> str:
        fwd = self.mcp[name]
        parts = urlsplit(url)
        return urlunsplit(("http", f"127.0.0.1:{fwd.port}", parts.path or "/", parts.query, ""))

    async def close(self) -> None:
        for fwd in (self.model, self.egress, *self.mcp.values()):
            if fwd is not None:
                await fwd.close()
        for sock in self.listeners.values():  # never served
            sock.close()
        self.listeners.clear()


def link_env(model_url: str, egress_url: str) -> dict[str, str]:
    """What the CLI's environment gets from a sandbox link whose forwarders listen there."""
    env = {"ANTHROPIC_BASE_URL": model_url, "ANTHROPIC_API_KEY": PLACEHOLDER_KEY}
    env.update(dict.fromkeys(_PROXY_VARS, egress_url))
    # The container's own loopback: the forwarders (and whatever the agent serves itself).
    env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1,::1"
    return env


def remote_mcp_names(options: ClaudeAgentOptions) -> list[str]:
    servers = options.mcp_servers if isinstance(options.mcp_servers, dict) else {}
    return [
        n for n, s in servers.items() if isinstance(s, dict) and s.get("type") in ("sse", "http")
    ]


def confine(
    options: ClaudeAgentOptions, link: SandboxLink | None, settings: RunnerSettings, scratch: Path
) -> ClaudeAgentOptions:
    """Return ``options`` as the sandbox runs them: routed through ``link``, as the agent's uid.

    ``scratch`` is a directory only this process can write in (the MCP config file goes there).
    """
    env = dict(options.env)
    servers: dict[str, Any] = (
        dict(options.mcp_servers) if isinstance(options.mcp_servers, dict) else {}
    )
    if link is not None:
        env.pop("ANTHROPIC_AUTH_TOKEN", None)
        env.update(link.env())
        for name, spec in servers.items():
            if isinstance(spec, dict) and spec.get("type") in ("sse", "http"):
                # The worker kept the headers; the gateway adds them on the way out.
                servers[name] = {"type": spec["type"], "url": link.mcp_url(name, spec["url"])}
    changes: dict[str, Any] = {"env": env}
    # In-process (sdk) servers cannot go through a file; none of them holds a secret.
    if servers and not any(
        isinstance(s, dict) and s.get("type") == "sdk" for s in servers.values()
    ):
        path = scratch / "mcp-config.json"
        tmp = scratch / "mcp-config.json.tmp"
        tmp.write_text(json.dumps({"mcpServers": servers}))
        # The CLI (the agent's uid) reads it; nothing in it is hidden from the agent (stdio
        # servers' env is the agent's to use), but it stays out of argv.
        os.chmod(tmp, 0o644)
        tmp.replace(path)
        changes["mcp_servers"] = str(path)
    if settings.agent_uid is not None:
        env.update(as_agent(settings, str(options.cli_path or bundled_cli())))
        changes["cli_path"] = str(AGENT_CLI)
    return dataclasses.replace(options, **changes)


def as_agent(settings: RunnerSettings, cli: str) -> dict[str, str]:
    """The environment runner/bin/agent-cli reads to start ``cli`` as the agent's uid."""
    assert settings.agent_uid is not None
    return {"AGC_AGENT_UID": str(settings.agent_uid), "AGC_CLI_PATH": cli}


def private_scratch(settings: RunnerSettings) -> Path:
    """Make a directory only this process writes in (the agent may traverse, not list it)."""
    path = Path(tempfile.mkdtemp(prefix="agc-runner-", dir=settings.tmp_root))
    os.chmod(path, 0o711)  # noqa: S103 - traversable, not listable: the CLI reads one file
    return path
