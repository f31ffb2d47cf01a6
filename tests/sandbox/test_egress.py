"""The egress proxy on a real unix socket behind the runner's real forwarder: policies by host
name, the address rules, and the report of every refusal."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from configs.model import Egress
from tests.modelserver.server import ModelServer
from workers.sandbox.policy import EgressDenied, EgressPolicy, is_public, parse_test_hosts


async def connect_via(
    proxy_url: str, authority: str
) -> tuple[bytes, asyncio.StreamReader, asyncio.StreamWriter]:
    """Send CONNECT through the proxy; return the response head and the open connection."""
    u = urlsplit(proxy_url)
    reader, writer = await asyncio.open_connection(u.hostname, u.port)
    writer.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    return head, reader, writer


async def test_allowlisted_name_is_proxied_both_ways(
    make_harness: Any, model_server: ModelServer
) -> None:
    h = await make_harness(test_hosts={"pypi.example.test": ("127.0.0.1", model_server.port)})
    policy = EgressPolicy("allowlist", ("pypi.example.test", "*.github.test"))
    sbx = await h.sandbox("sess-e", egress=policy)
    proxy = await sbx.proxy_url()
    # plain HTTP, absolute URI
    async with httpx.AsyncClient(proxy=proxy, timeout=10) as c:
        r = await c.get("http://pypi.example.test/health")
    assert r.status_code == 200 and r.json() == {"ok": True}
    seen = model_server.requests[-1]
    assert seen.path == "/health"
    assert seen.headers["host"] == "pypi.example.test"
    assert "proxy-connection" not in seen.headers
    # a CONNECT tunnel carries whatever the client speaks inside it
    head, reader, writer = await connect_via(proxy, "pypi.example.test:443")
    assert head.startswith(b"HTTP/1.1 200")
    writer.write(b"GET /health HTTP/1.1\r\nHost: pypi.example.test\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"ok": true}')
    assert h.denials == []


@pytest.mark.parametrize(
    ("policy", "authority", "why"),
    [
        (EgressPolicy("model"), "pypi.example.test:443", "allows no outside host"),
        (EgressPolicy("none"), "pypi.example.test:443", "allows no outside host"),
        (EgressPolicy("allowlist", ("pypi.example.test",)), "evil.example.test:443", "allowlist"),
        (EgressPolicy("allowlist", ("pypi.example.test",)), "pypi.example.test:22", "allowlist"),
        (EgressPolicy("allowlist", ("*.github.test",)), "github.test:443", "allowlist"),
        (EgressPolicy("open"), "localhost:443", "non-public"),
        (EgressPolicy("open"), "127.0.0.1:443", "non-public"),
        (EgressPolicy("open"), "[::1]:443", "non-public"),
        (EgressPolicy("open"), "169.254.169.254:80", "non-public"),
        (EgressPolicy("open"), "10.1.2.3:443", "non-public"),
        (EgressPolicy("open"), "[::ffff:192.168.1.1]:443", "non-public"),
        (EgressPolicy("open"), "pypi.example.test:8080", "ports 80 and 443"),
    ],
)
async def test_refusals_are_403_with_a_reason_and_reported(
    make_harness: Any, model_server: ModelServer, policy: EgressPolicy, authority: str, why: str
) -> None:
    h = await make_harness(test_hosts={"pypi.example.test": ("127.0.0.1", model_server.port)})
    sbx = await h.sandbox("sess-d", egress=policy)
    before = len(model_server.requests)
    head, reader, writer = await connect_via(await sbx.proxy_url(), authority)
    rest = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert head.startswith(b"HTTP/1.1 403"), head
    assert b"x-agc-egress: denied" in head
    assert why in rest.decode()
    [denial] = h.denials
    assert denial.session_id == "sess-d"
    assert denial.policy == policy.name
    assert why in denial.reason
    assert denial.method == "CONNECT"
    assert len(model_server.requests) == before


async def test_plain_http_refusal_and_tool_visible_error(make_harness: Any) -> None:
    h = await make_harness()
    sbx = await h.sandbox("sess-p", egress=EgressPolicy("model"))
    async with httpx.AsyncClient(proxy=await sbx.proxy_url(), timeout=10) as c:
        r = await c.get("http://example.com/")
    assert r.status_code == 403
    assert "egress policy 'model'" in r.text
    assert [(d.host, d.port, d.method) for d in h.denials] == [("example.com", 80, "GET")]


async def test_unbound_or_foreign_token_gets_nothing(
    make_harness: Any, model_server: ModelServer
) -> None:
    h = await make_harness(test_hosts={"pypi.example.test": ("127.0.0.1", model_server.port)})
    open_policy = EgressPolicy("allowlist", ("pypi.example.test",))
    unbound = await h.sandbox(None)
    a = await h.sandbox("sess-a", egress=open_policy)
    b = await h.sandbox("sess-b", egress=open_policy)
    for url in (await unbound.proxy_url(), await a.proxy_url(token=b.token)):
        head, _reader, writer = await connect_via(url, "pypi.example.test:443")
        writer.close()
        assert head.startswith(b"HTTP/1.1 407"), head
    h.registry.unbind(a.name)
    head, _, writer = await connect_via(await a.proxy_url(), "pypi.example.test:443")
    writer.close()
    assert head.startswith(b"HTTP/1.1 407")


def test_public_address_rules() -> None:
    for addr in ("8.8.8.8", "2606:4700::1111", "1.1.1.1"):
        assert is_public(addr), addr
    for addr in (
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:0a00:0001::1",
        "224.0.0.1",
        "fd00:ec2::254",
    ):
        assert not is_public(addr), addr


def test_policy_names_and_patterns() -> None:
    p = EgressPolicy.from_egress(
        Egress(
            policy="allowlist",
            domains=["API.GitHub.com", "*.pythonhosted.org", "git.example.org:8443"],
        )
    )
    p.check_name("api.github.com", 443)
    p.check_name("files.pythonhosted.org", 443)
    p.check_name("git.example.org", 8443)
    for host, port in (
        ("pythonhosted.org", 443),
        ("github.com", 443),
        ("git.example.org", 443),
        ("api.github.com", 8443),
    ):
        with pytest.raises(EgressDenied):
            p.check_name(host, port)
    assert EgressPolicy.from_egress(Egress()).name == "model"
    assert EgressPolicy.from_egress(Egress.model_validate("open")).name == "open"
    assert parse_test_hosts("a.test=127.0.0.1:81, b.test=[::1]:82") == {
        "a.test": ("127.0.0.1", 81),
        "b.test": ("::1", 82),
    }
    with pytest.raises(ValueError, match="loopback"):
        parse_test_hosts("a.test=10.0.0.1:80")
