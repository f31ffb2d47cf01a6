"""Which session each sandbox serves, and the token that proves it.

A sandbox (one container, named before any session exists so a warm pool can start it early)
is bound to a session when its runner gets the session's ``init``: the worker makes a random
token, keeps only its SHA-256 here (and in the session's Redis record, so a worker that adopts
the session can bind it again), and hands the token to the runner. Every connection on the
sandbox's sockets must present it. A token is worthless elsewhere: it is checked against the
binding of the sandbox whose socket it arrives on, and unbinding (the session stops) revokes
it. An unbound sandbox answers 401.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from workers.sandbox.policy import EgressPolicy


def new_token() -> str:
    """Return a fresh session token (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Return the hex SHA-256 of a token (what is stored; the token itself never is)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class McpRoute:
    """A remote MCP server the gateway forwards to, with the headers only it adds."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Binding:
    """A session bound to a sandbox: what its requests are checked against and run with."""

    session_id: str
    token_sha256: str
    api_key: str = field(repr=False)
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    mcp: Mapping[str, McpRoute] = field(default_factory=dict, repr=False)

    def accepts(self, token: str) -> bool:
        return hmac.compare_digest(token_hash(token), self.token_sha256)


class SandboxRegistry:
    """Sandbox name -> binding; lookups are constant time and need no I/O."""

    def __init__(self) -> None:
        self._bindings: dict[str, Binding] = {}

    def bind(self, sandbox: str, binding: Binding) -> None:
        """Bind ``sandbox`` to a session (replacing any earlier binding: a new token)."""
        self._bindings[sandbox] = binding

    def unbind(self, sandbox: str) -> None:
        """Revoke the sandbox's token; its sockets answer 401 from now on."""
        self._bindings.pop(sandbox, None)

    def binding(self, sandbox: str) -> Binding | None:
        return self._bindings.get(sandbox)

    def authenticate(self, sandbox: str, token: str) -> Binding | None:
        """Return the sandbox's binding if ``token`` is its session's token, else None."""
        binding = self._bindings.get(sandbox)
        if binding is None or not binding.accepts(token):
            return None
        return binding
