"""Egress policy: which host names a session may reach, and which addresses nobody may.

A policy comes from the agent config's ``egress`` field (``configs.model.Egress``):

- ``none``: nothing but the model gateway; remote MCP servers are refused too;
- ``model`` (default): the model gateway and the config's own remote MCP servers (both reached
  by the gateway, not through the proxy); the proxy refuses everything;
- ``allowlist``: additionally the listed domains (``example.com`` exactly, ``*.example.com``
  any sub-domain, ``host:port`` for a port other than 80/443);
- ``open``: any host on ports 80/443.

Whatever the policy, a name is resolved here and refused if *any* of its addresses is not a
public unicast address (loopback, private, link-local, cloud metadata, CGNAT, multicast,
reserved, IPv4-mapped forms of those): the proxy connects to the address it checked, so a
DNS answer cannot change between check and use. ``test_hosts`` (operator setting
``AGC_EGRESS_TEST_HOSTS``, off by default) maps exact host names to loopback ports for tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from configs.model import Egress

PolicyName = Literal["none", "model", "allowlist", "open"]
DEFAULT_PORTS = frozenset({80, 443})


class EgressDenied(Exception):
    """A destination the policy or the address rules refuse; ``str()`` says why."""


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """One session's egress policy (see the module docstring)."""

    name: PolicyName = "model"
    domains: tuple[str, ...] = ()

    @classmethod
    def from_egress(cls, egress: Egress) -> EgressPolicy:
        """The policy of a config's ``egress`` (validated and normalised by the config model)."""
        return cls(egress.policy, tuple(egress.domains))

    @property
    def allows_mcp(self) -> bool:
        """Whether the config's own remote MCP servers may be reached (all but ``none``)."""
        return self.name != "none"

    def check_name(self, host: str, port: int) -> None:
        """Raise :class:`EgressDenied` unless the policy lets ``host:port`` through."""
        host = host.lower().rstrip(".")
        if self.name in ("none", "model"):
            raise EgressDenied(f"egress policy {self.name!r} allows no outside host")
        if self.name == "open":
            if port not in DEFAULT_PORTS:
                raise EgressDenied(f"egress policy 'open' allows ports 80 and 443 only, not {port}")
            return
        for pattern in self.domains:
            pat_host, _, pat_port = pattern.partition(":")
            if pat_port:
                if not pat_port.isdigit() or int(pat_port) != port:
                    continue
            elif port not in DEFAULT_PORTS:
                continue
            if _host_matches(host, pat_host):
                return
        raise EgressDenied(f"{host}:{port} is not on this session's egress allowlist")


def _host_matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def is_public(addr: str) -> bool:
    """Whether ``addr`` is a public unicast address a sandbox may be connected to."""
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped
        elif ip.teredo is not None:
            ip = ip.teredo[1]
    # is_global is False for loopback, RFC 1918, link-local (169.254/16, the metadata
    # address included), CGNAT 100.64/10, unspecified, reserved and documentation ranges.
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True, slots=True)
class Resolver:
    """Resolve a host name to the addresses a sandbox may be connected to."""

    # Exact host name -> (loopback host, port): tests only (AGC_EGRESS_TEST_HOSTS).
    test_hosts: Mapping[str, tuple[str, int]] = field(default_factory=dict)

    async def resolve(self, host: str, port: int) -> list[tuple[str, int]]:
        """Return ``(address, port)`` candidates; raise :class:`EgressDenied` if any is private."""
        mapped = self.test_hosts.get(host.lower().rstrip("."))
        if mapped is not None:
            return [mapped]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise EgressDenied(f"cannot resolve {host}: {exc}") from exc
        addrs = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addrs:
            raise EgressDenied(f"{host} has no address")
        bad = [a for a in addrs if not is_public(a)]
        if bad:
            raise EgressDenied(f"{host} resolves to a non-public address ({bad[0]})")
        return [(a, port) for a in addrs]


def parse_test_hosts(spec: str) -> dict[str, tuple[str, int]]:
    """Parse ``name=127.0.0.1:PORT,other=127.0.0.1:PORT`` (only loopback targets are accepted)."""
    out: dict[str, tuple[str, int]] = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, target = item.partition("=")
        host, _, port = target.rpartition(":")
        if not sep or not name or not port.isdigit():
            raise ValueError(f"AGC_EGRESS_TEST_HOSTS entry {item!r} is not name=host:port")
        if not ipaddress.ip_address(host.strip("[]")).is_loopback:
            raise ValueError(f"AGC_EGRESS_TEST_HOSTS may only map to loopback, not {host}")
        out[name.strip().lower()] = (host.strip("[]"), int(port))
    return out
