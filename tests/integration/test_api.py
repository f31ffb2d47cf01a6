"""The API against real NATS and Redis (no Docker): health, configs, launch validation, auth."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from agcluster.procs import Service
from api.app import create_app
from broker.sealing import Sealer
from broker.state import SessionRecord, SessionStore, WorkerInfo
from tests.support.api_server import api_settings

OPERATOR_TOKEN = "op-token-for-tests"
# Custom-config writes need the operator token (reads stay open).
OP = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
PRESETS = {
    "code-assistant",
    "research-agent",
    "data-analysis",
    "github-code-review",
    "fullstack-team",
}


@pytest.fixture
async def client(
    nats_server: Service, redis_server: Service, tmp_path: Path, secret_key: str
) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = api_settings(
        nats_server.url,
        redis_server.url,
        secret_key,
        tmp_path,
        launch_timeout=2.0,
        operator_token=OPERATOR_TOKEN,
    )
    async with AsyncTestClient(app=create_app(settings)) as c:
        yield c


async def _alive_worker(redis_server: Service) -> None:
    r = Redis.from_url(redis_server.url)
    await SessionStore(r).heartbeat("w-test", WorkerInfo(), ttl=30)
    await r.aclose()


def _assert_error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body: dict[str, Any] = resp.json()
    assert body["status_code"] == status and body["error"] and body["detail"]
    return body


async def test_health_reports_dependencies_and_workers(
    client: AsyncTestClient[Any], redis_server: Service
) -> None:
    r = await client.get("/health")
    body = r.json()
    assert r.status_code == 503 and body["workers"]["alive"] == 0
    assert body["nats"]["ok"] and body["redis"]["ok"]
    await _alive_worker(redis_server)
    r = await client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert r.json()["workers"]["ids"] == ["w-test"]


async def test_health_is_503_when_redis_is_down(
    client: AsyncTestClient[Any], redis_server: Service
) -> None:
    await _alive_worker(redis_server)
    redis_server.stop()
    r = await client.get("/health")
    assert r.status_code == 503
    assert r.json()["redis"]["ok"] is False


async def test_list_and_get_configs(client: AsyncTestClient[Any]) -> None:
    r = await client.get("/api/configs/")
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == len(body["configs"]) == 5
    by_id = {c["id"]: c for c in body["configs"]}
    assert set(by_id) == PRESETS
    assert by_id["fullstack-team"]["has_sub_agents"] is True
    assert by_id["github-code-review"]["has_mcp_servers"] is True
    assert by_id["github-code-review"]["mcp_credentials"] == {
        "github": ["GITHUB_PERSONAL_ACCESS_TOKEN"]
    }
    assert by_id["code-assistant"]["source"] == "preset"
    full = (await client.get("/api/configs/code-assistant")).json()
    assert full["resource_limits"]["cpu_quota"] == 200000 and full["max_turns"] == 100
    assert "Bash" in full["allowed_tools"]
    body = _assert_error(await client.get("/api/configs/nope"), 404)
    assert "nope" in body["detail"]


CUSTOM = {
    "id": "my-agent",
    "name": "Mine",
    "allowed_tools": ["Read", "Grep"],
    "system_prompt": "You review code.",
    "resource_limits": {"cpu_quota": 50000, "memory_limit": "1g"},
}


async def test_custom_config_lifecycle(client: AsyncTestClient[Any], tmp_path: Path) -> None:
    r = await client.post("/api/configs/custom", json=CUSTOM, headers=OP)
    assert r.status_code == 201, r.text
    assert (tmp_path / "configs" / "my-agent.yaml").exists()
    listed = (await client.get("/api/configs/")).json()
    assert {c["id"]: c["source"] for c in listed["configs"]}["my-agent"] == "custom"
    assert (await client.get("/api/configs/my-agent")).json()["name"] == "Mine"
    assert (await client.delete("/api/configs/custom/my-agent", headers=OP)).status_code == 204
    _assert_error(await client.get("/api/configs/my-agent"), 404)
    _assert_error(await client.delete("/api/configs/custom/my-agent", headers=OP), 404)
    _assert_error(await client.delete("/api/configs/custom/code-assistant", headers=OP), 403)


async def test_custom_config_clashing_with_preset_is_409(client: AsyncTestClient[Any]) -> None:
    _assert_error(
        await client.post(
            "/api/configs/custom", json={**CUSTOM, "id": "code-assistant"}, headers=OP
        ),
        409,
    )


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"id": "Bad ID"}, "id"),
        ({"allowed_tools": ["Read", "Teleport"]}, "allowed_tools.1"),
        ({"allowed_tools": ["mcp__ghost__x"]}, "allowed_tools.0"),
        ({"permission_mode": "yolo"}, "permission_mode"),
        ({"resource_limits": {"memory_limit": "lots"}}, "resource_limits.memory_limit"),
        ({"resource_limits": {"cpu_quota": 10}}, "resource_limits.cpu_quota"),
        ({"env": {"ANTHROPIC_API_KEY": "x"}}, "env"),
        ({"surprise": 1}, "surprise"),
        ({"system_prompt": {"type": "preset", "preset": "other"}}, "system_prompt"),
        ({"agents": {"a": {"description": "d", "prompt": "p", "tools": ["Nope"]}}}, "agents.a"),
    ],
)
async def test_invalid_configs_are_422_naming_the_field(
    client: AsyncTestClient[Any], patch: dict[str, Any], field: str
) -> None:
    body = _assert_error(
        await client.post("/api/configs/custom", json={**CUSTOM, **patch}, headers=OP), 422
    )
    fields = [e["field"] for e in body["errors"]]
    assert any(f.startswith(field) for f in fields), fields
    valid = await client.post("/api/configs/validate", json={**CUSTOM, **patch})
    assert valid.status_code == 422


async def test_every_invalid_field_is_listed(client: AsyncTestClient[Any]) -> None:
    bad = {**CUSTOM, "id": "X!", "permission_mode": "no", "allowed_tools": ["Nope"]}
    body = _assert_error(await client.post("/api/configs/validate", json=bad), 422)
    assert len(body["errors"]) >= 3


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/api/configs/custom", {"content": b"{not json"}, 400),
        ("POST", "/api/configs/custom", {"content": b"[1,2]"}, 400),
        ("POST", "/api/configs/custom", {"content": b'{"x":"' + b"a" * 2_000_000 + b'"}'}, 413),
        ("PUT", "/api/configs/", {}, 405),
        ("GET", "/api/nothing-here", {}, 404),
        ("POST", "/api/agents/launch", {"content": b"null"}, 400),
        ("POST", "/api/agents/launch", {"json": {"config_id": "code-assistant"}}, 400),
        ("POST", "/api/agents/launch", {"json": {"api_key": "k", "config_id": 7}}, 400),
        ("POST", "/api/agents/launch", {"json": {"api_key": "k", "cfg": "x"}}, 400),
        ("POST", "/api/agents/launch", {"json": {"api_key": "k"}}, 400),
        ("POST", "/api/agents/launch", {"json": {"api_key": " ", "config_id": "x"}}, 400),
        ("GET", "/api/agents/sessions", {}, 401),
        (
            "GET",
            "/api/agents/sessions/conv-00000000",
            {"headers": {"Authorization": "Bearer k"}},
            404,
        ),
        ("GET", "/api/agents/sessions/../../etc", {"headers": {"Authorization": "Bearer k"}}, 404),
        ("POST", "/api/agents/conv-00000000/chat", {"json": {"message": "hi"}}, 401),
        ("GET", "/api/agents/conv-00000000/events", {"headers": {"Authorization": "Basic x"}}, 401),
    ],
)
async def test_malformed_requests_get_clear_json_errors(
    client: AsyncTestClient[Any], method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    if "content" in kwargs:
        kwargs = {**kwargs, "headers": {"Content-Type": "application/json", **OP}}
    _assert_error(await client.request(method, path, **kwargs), status)


async def test_launch_validation(client: AsyncTestClient[Any], redis_server: Service) -> None:
    body = _assert_error(
        await client.post("/api/agents/launch", json={"api_key": "k", "config_id": "nope"}), 404
    )
    assert "nope" in body["detail"]
    _assert_error(
        await client.post(
            "/api/agents/launch", json={"api_key": "k", "config": {**CUSTOM, "id": "B A D"}}
        ),
        422,
    )
    gh = {"api_key": "k", "config_id": "github-code-review"}
    _assert_error(
        await client.post("/api/agents/launch", json={**gh, "mcp_env": {"github": {"OTHER": "x"}}}),
        400,
    )
    _assert_error(
        await client.post("/api/agents/launch", json={**gh, "mcp_env": {"ghost": {"A": "x"}}}), 400
    )
    for core in ("ANTHROPIC_API_KEY", "AGENT_CONFIG_JSON", "AGC_SECRET_KEY", "PATH"):
        body = _assert_error(
            await client.post(
                "/api/agents/launch", json={**gh, "mcp_env": {"github": {core: "x"}}}
            ),
            400,
        )
        assert core in body["detail"]
    # Valid request, but no worker alive.
    body = _assert_error(
        await client.post(
            "/api/agents/launch",
            json={**gh, "mcp_env": {"github": {"GITHUB_PERSONAL_ACCESS_TOKEN": "t"}}},
        ),
        503,
    )
    assert "worker" in body["detail"]


async def test_session_routes_check_the_launch_key(
    client: AsyncTestClient[Any], redis_server: Service, secret_key: str
) -> None:
    r = Redis.from_url(redis_server.url)
    sealer = Sealer(secret_key)
    sid = "conv-0123456789abcdef0123456789abcdef"
    await SessionStore(r).create(
        SessionRecord(
            session_id=sid,
            agent_id="agent-x",
            config_id="code-assistant",
            status="idle",
            key_hash=sealer.key_hash("right-key"),
            sealed_api_key=sealer.seal("right-key", context=sid),
        )
    )
    await r.aclose()
    ok = await client.get(
        f"/api/agents/sessions/{sid}", headers={"Authorization": "Bearer right-key"}
    )
    assert ok.status_code == 200 and ok.json()["session_id"] == sid
    assert "right-key" not in ok.text and "v1." not in ok.text
    for route in (f"/api/agents/sessions/{sid}", f"/api/agents/{sid}/events"):
        _assert_error(await client.get(route, headers={"Authorization": "Bearer wrong"}), 403)
        _assert_error(await client.get(route), 401)
    _assert_error(
        await client.post(
            f"/api/agents/{sid}/chat",
            json={"message": "x"},
            headers={"Authorization": "Bearer wrong"},
        ),
        403,
    )
    _assert_error(
        await client.post(
            f"/api/agents/{sid}/chat",
            json={"message": ""},
            headers={"Authorization": "Bearer right-key"},
        ),
        400,
    )
    mine = await client.get("/api/agents/sessions", headers={"Authorization": "Bearer right-key"})
    assert [s["session_id"] for s in mine.json()["sessions"]] == [sid]
    theirs = await client.get("/api/agents/sessions", headers={"Authorization": "Bearer other"})
    assert theirs.json() == {"sessions": [], "total": 0}


async def test_openapi_schema_is_served(client: AsyncTestClient[Any]) -> None:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    paths = json.loads(r.text)["paths"]
    assert "/api/agents/launch" in paths and "/api/configs" in paths
