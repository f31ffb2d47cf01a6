"""The model gateway on a real unix socket, reached through the runner's real forwarder, in
front of the scripted model server: the key swap, pass-through, streaming, metering, refusals."""

from __future__ import annotations

import json
import os
import stat
import time
from typing import Any

import httpx

from tests.modelserver.script import step, text
from tests.modelserver.server import ModelServer
from tests.sandbox.conftest import API_KEY
from workers.sandbox.policy import EgressPolicy
from workers.sandbox.pricing import ModelUsage, cost_usd
from workers.sandbox.registry import McpRoute

MODEL = "claude-sonnet-4-5-20250929"


def messages_body(marker: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 64,
        "stream": True,
        "messages": [{"role": "user", "content": f"hi {marker}"}],
        **extra,
    }


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[5:]) for line in raw.decode().splitlines() if line.startswith("data:")]


async def test_streams_through_with_the_real_key_and_every_header(
    make_harness: Any, model_server: ModelServer
) -> None:
    h = await make_harness(model_server.base_url)
    sbx = await h.sandbox("sess-a")
    marker = model_server.add_script(
        "gw-stream",
        [
            step(
                text("Hello there, sandbox.", chunk=5),
                usage={
                    "input_tokens": 1200,
                    "output_tokens": 34,
                    "cache_creation_input_tokens": 500,
                    "cache_read_input_tokens": 70,
                },
            )
        ],
    )
    url = await sbx.model_url()
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        r = await c.post(
            "/v1/messages?beta=true",
            json=messages_body(marker),
            headers={
                "x-api-key": "placeholder-the-cli-holds",
                "anthropic-beta": "interleaved-thinking-2025-05-14",
                "anthropic-version": "2023-06-01",
                "x-stainless-retry-count": "0",
            },
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r.content)
        text_out = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
        assert text_out == "Hello there, sandbox."
        counted = await c.post(
            "/v1/messages/count_tokens?beta=true",
            json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
        )
        assert counted.status_code == 200 and counted.json()["input_tokens"] >= 1

    seen = model_server.requests_for("gw-stream")[0]
    assert seen.path == "/v1/messages?beta=true"
    assert seen.headers["x-api-key"] == API_KEY
    assert seen.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["x-stainless-retry-count"] == "0"
    assert "placeholder" not in json.dumps(seen.headers)
    assert seen.body["messages"][0]["content"] == f"hi {marker}"
    assert model_server.requests[-1].path == "/v1/messages/count_tokens?beta=true"
    assert model_server.requests[-1].headers["x-api-key"] == API_KEY

    # usage comes from the model's own stream: exactly its numbers, once
    total = ModelUsage()
    for sid, model, u in h.usage:
        assert (sid, model) == ("sess-a", MODEL)
        total = total.plus(u)
    assert total == ModelUsage(
        input_tokens=1200,
        output_tokens=34,
        cache_creation_input_tokens=500,
        cache_read_input_tokens=70,
    )
    expected = (1200 * 3 + 34 * 15 + 500 * 3 * 1.25 + 70 * 3 * 0.1) / 1e6
    assert abs(cost_usd(MODEL, total) - expected) < 1e-12


async def test_chunks_are_forwarded_as_they_arrive(
    make_harness: Any, model_server: ModelServer
) -> None:
    h = await make_harness(model_server.base_url)
    sbx = await h.sandbox()
    marker = model_server.add_script("gw-slow", [step(text("a1 b2 c3 d4 e5", chunk=3), delay=0.25)])
    arrivals: list[tuple[str, float]] = []
    async with (
        httpx.AsyncClient(base_url=await sbx.model_url(), timeout=10) as c,
        c.stream("POST", "/v1/messages", json=messages_body(marker)) as r,
    ):
        async for line in r.aiter_lines():
            if line.startswith("data:") and '"text_delta"' in line:
                arrivals.append((json.loads(line[5:])["delta"]["text"], time.monotonic()))
    emitted = dict(model_server.emitted_log)
    assert [t for t, _ in arrivals] == ["a1 ", "b2 ", "c3 ", "d4 ", "e5"]
    # the first piece reached the client before the model had even written the last one
    assert arrivals[0][1] < emitted["e5"]
    for piece, at in arrivals:
        assert at - emitted[piece] < 0.2, piece


async def test_refusals_have_the_api_error_shape(
    make_harness: Any, model_server: ModelServer
) -> None:
    h = await make_harness(model_server.base_url)
    unbound = await h.sandbox(None)
    bound = await h.sandbox("sess-b")
    other = await h.sandbox("sess-c")
    body = messages_body("nothing")
    before = len(model_server.requests)

    async def post(url: str, **kw: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=url, timeout=10) as c:
            return await c.post("/v1/messages", **kw)

    # a warm sandbox that no session claimed yet
    r = await post(await unbound.model_url(), json=body)
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"
    # a real token, but another sandbox's
    r = await post(await bound.model_url(token=other.token), json=body)
    assert r.status_code == 401
    # too large
    r = await post(await bound.model_url(), content=b"x" * (2 << 20))
    assert r.status_code == 413
    # the session stopped: its token is revoked at once, also on a connection opened before
    url = await bound.model_url()
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        assert (await c.post("/v1/messages", json=messages_body("ok"))).status_code == 200
        h.registry.unbind(bound.name)
        assert (await c.post("/v1/messages", json=body)).status_code == 401
    # nothing refused ever reached the model
    assert len(model_server.requests) == before + 1
    # the sockets are the worker's alone
    for sock in ("gw.sock", "egress.sock"):
        mode = os.stat(bound.path / sock).st_mode
        assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(os.stat(bound.path).st_mode) == 0o700


async def test_garbage_instead_of_a_preamble_is_dropped(make_harness: Any) -> None:
    import asyncio

    h = await make_harness()
    sbx = await h.sandbox()
    reader, writer = await asyncio.open_unix_connection(str(sbx.path / "gw.sock"))
    writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_remote_mcp_server_gets_its_headers_added_outside(
    make_harness: Any, model_server: ModelServer
) -> None:
    h = await make_harness(test_hosts={"mcp.example.test": ("127.0.0.1", model_server.port)})
    routes = {
        "remote": McpRoute(
            url="http://mcp.example.test/health?tenant=t1",
            headers={"Authorization": "Bearer mcp-secret-token"},
        ),
        "local": McpRoute(url=f"http://127.0.0.1:{model_server.port}/health"),
    }
    sbx = await h.sandbox("sess-m", mcp=routes)
    async with httpx.AsyncClient(base_url=await sbx.mcp_url("remote"), timeout=10) as c:
        r = await c.get("/health")
    assert r.status_code == 200 and r.json() == {"ok": True}
    seen = model_server.requests[-1]
    assert seen.path == "/health?tenant=t1"
    assert seen.headers["authorization"] == "Bearer mcp-secret-token"
    assert seen.headers["host"] == "mcp.example.test"
    # an MCP URL on the host's loopback is refused like any private address
    async with httpx.AsyncClient(base_url=await sbx.mcp_url("local"), timeout=10) as c:
        r = await c.get("/health")
    assert r.status_code == 403
    assert "non-public" in r.json()["error"]["message"]
    # a server the config does not have, and a session whose policy is "none"
    async with httpx.AsyncClient(base_url=await sbx.mcp_url("nope"), timeout=10) as c:
        assert (await c.get("/health")).status_code == 403
    closed = await h.sandbox("sess-n", mcp=routes, egress=EgressPolicy("none"))
    async with httpx.AsyncClient(base_url=await closed.mcp_url("remote"), timeout=10) as c:
        assert (await c.get("/health")).status_code == 403
    assert not h.usage
