"""The perimeter, tried as an attacker would: real nats-server users and permissions, a real
Redis ACL, TLS with a CA the test makes, and the API's browser, operator and limit guards.

The platform's own credentials come from ``agcluster.credentials`` exactly as ``agcluster up``
generates them (the ``credentials`` fixture); the servers run them (``nats_server``,
``redis_server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from litestar.testing import AsyncTestClient
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerConfig
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError

from agcluster.credentials import Credentials, with_userinfo
from agcluster.procs import Service, start_nats, start_redis
from api.app import create_app
from api.settings import ApiSettings
from broker import subjects
from broker.commands import Chat, encode_command
from broker.connect import ConnectError, connect_nats, connect_redis, nats_auth
from broker.settings import CommonSettings
from broker.state import SessionStore, WorkerInfo
from broker.streams import ensure_streams
from tests.support.api_server import api_settings
from tests.support.auth import start_nats_with_auth
from tests.support.tls import make_ca_and_server_cert

SID = "conv-" + "ab" * 8
OPERATOR = "op-" + uuid.uuid4().hex
CUSTOM = {"id": "perimeter", "name": "Perimeter", "allowed_tools": ["Read"]}


async def _errors_of(url: str) -> tuple[NATS, list[str]]:
    """A client whose asynchronous errors (permission violations) are collected."""
    seen: list[str] = []

    async def on_error(exc: Exception) -> None:
        seen.append(str(exc))

    return await nats.connect(url, error_cb=on_error, max_reconnect_attempts=0), seen


async def _until(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def streams(nats_server: Service) -> None:
    nc = await connect_nats(nats_server.extra["url:api"], name="api")
    await ensure_streams(nc.jetstream())
    await nc.close()


# ---------------------------------------------------------------------------- NATS
async def test_nats_refuses_a_missing_or_wrong_credential_at_once(
    nats_server: Service, credentials: Credentials
) -> None:
    bare = nats_server.extra["url:none"]
    wrong = with_userinfo(bare, credentials.nats_user("api"), "not-the-password")
    for url in (bare, wrong):
        t0 = time.monotonic()
        with pytest.raises(ConnectError) as err:
            await connect_nats(url, name="intruder", first_attempt_for=30)
        # Refused, not retried for the 30 s a server that is down would get.
        assert time.monotonic() - t0 < 5
        assert "refused the credentials" in str(err.value)
        assert "not-the-password" not in str(err.value)


async def test_a_worker_credential_cannot_publish_a_chat(
    nats_server: Service, streams: None
) -> None:
    worker, errors = await _errors_of(nats_server.extra["url:worker"])
    js = worker.jetstream()
    chat = encode_command(Chat(session_id=SID, turn_id="turn-x", message="rm -rf /"))
    with pytest.raises(nats.errors.TimeoutError):
        await js.publish(subjects.session_cmd(SID, "chat"), chat, timeout=1.0)
    await worker.publish(subjects.LAUNCH, b"{}")
    await worker.flush()
    await _until(lambda: len(errors) >= 2)
    assert all("permissions violation" in e.lower() for e in errors), errors
    # ... while it can publish events (what workers are for).
    await js.publish(subjects.events(SID), b'{"type":"session.status"}', timeout=5.0)
    # Nor may it rewrite the command stream (a subject transform could turn events into chats).
    with pytest.raises(nats.errors.TimeoutError):
        await worker.request(f"$JS.API.STREAM.DELETE.{subjects.CMD_STREAM}", b"", timeout=1.0)
    await worker.close()
    admin = await nats.connect(nats_server.url)
    info = await admin.jetstream().stream_info(subjects.CMD_STREAM)
    assert info.state.messages == 0
    await admin.close()


async def test_a_subscriber_reads_events_and_nothing_else(
    nats_server: Service, streams: None
) -> None:
    worker = await nats.connect(nats_server.extra["url:worker"])
    await worker.jetstream().publish(subjects.events(SID), b'{"type":"turn.started"}')
    reader, errors = await _errors_of(nats_server.extra["url:reader"])
    rjs = reader.jetstream()
    # Live subscription and the stream from its start, through a JetStream consumer.
    live = await reader.subscribe(subjects.ALL_EVENTS)
    stored = await rjs.subscribe(subjects.ALL_EVENTS, ordered_consumer=True)
    assert (await stored.next_msg(timeout=5)).data == b'{"type":"turn.started"}'
    await worker.jetstream().publish(subjects.events(SID), b'{"type":"turn.completed"}')
    assert (await live.next_msg(timeout=5)).data == b'{"type":"turn.completed"}'
    await worker.close()
    # Nothing else: no commands, no events, no requests, no reading the command stream.
    for subject in (subjects.LAUNCH, subjects.session_cmd(SID, "chat"), subjects.events(SID)):
        await reader.publish(subject, b"{}")
    await reader.subscribe(f"{subjects.RPC_PREFIX}.>")
    await reader.flush()
    await _until(lambda: len(errors) >= 4)
    assert all("permissions violation" in e.lower() for e in errors), errors
    with pytest.raises(nats.errors.TimeoutError):
        await rjs.add_consumer(subjects.CMD_STREAM, ConsumerConfig(), timeout=1.0)
    await reader.close()


# ---------------------------------------------------------------------------- Redis
async def test_redis_has_no_default_user_and_the_platform_user_is_no_admin(
    redis_server: Service, credentials: Credentials
) -> None:
    bare = redis_server.extra["url:none"]
    for settings in (
        CommonSettings(redis_url=bare),
        CommonSettings(
            redis_url=bare,
            redis_user=credentials.redis_user,
            redis_password="wrong",
        ),
    ):
        with pytest.raises(ConnectError) as err:
            await connect_redis(settings, first_attempt_for=30)
        assert "refused the credentials" in str(err.value)
    ok = CommonSettings(
        redis_url=bare,
        redis_user=credentials.redis_user,
        redis_password=credentials.redis_password,
    )
    redis = await connect_redis(ok)
    try:
        await redis.set("agc:probe", "1")
        for command in (("FLUSHALL",), ("CONFIG", "GET", "requirepass"), ("ACL", "LIST")):
            with pytest.raises(NoPermissionError):
                await redis.execute_command(*command)  # type: ignore[no-untyped-call]
    finally:
        await redis.aclose()
    # Only a hash of the password is on disk.
    assert credentials.redis_password not in credentials.redis_acl.read_text()


# ---------------------------------------------------------------------------- TLS
async def test_nats_and_redis_over_tls_with_the_tests_own_ca(
    tmp_path: Path, credentials: Credentials, free_tcp_port: int
) -> None:
    tls = make_ca_and_server_cert(tmp_path / "tls")
    conf = tmp_path / "nats-tls.conf"
    conf.write_text(
        credentials.nats_conf.read_text()
        + f'\ntls {{ cert_file: "{tls.cert}", key_file: "{tls.key}" }}\n'
    )
    nats_svc = start_nats(tmp_path / "nats", conf=conf)
    redis_svc = start_redis(
        tmp_path / "redis",
        extra_args=[
            "--aclfile",
            str(credentials.redis_acl),
            "--tls-port",
            str(free_tcp_port),
            "--tls-cert-file",
            str(tls.cert),
            "--tls-key-file",
            str(tls.key),
            "--tls-ca-cert-file",
            str(tls.ca),
            "--tls-auth-clients",
            "no",
        ],
    )
    try:
        url = nats_svc.url.replace("nats://", "tls://")
        role = credentials.role_env("api")
        settings = CommonSettings(
            nats_url=url,
            nats_user=role["AGC_NATS_USER"],
            nats_password=role["AGC_NATS_PASSWORD"],
            nats_tls_ca=tls.ca,
            redis_url=f"redis://127.0.0.1:{free_tcp_port}/0",
            redis_user=credentials.redis_user,
            redis_password=credentials.redis_password,
            redis_tls_ca=tls.ca,
        )
        nc = await connect_nats(settings.nats_url, name="tls", auth=nats_auth(settings))
        assert nc.connected_url is not None and nc.connected_url.scheme == "tls"
        await nc.close()
        redis = await connect_redis(settings)
        assert await redis.ping()
        await redis.aclose()
        # Without the CA the server's certificate is not trusted: a clear error, at once.
        untrusted = settings.model_copy(update={"nats_tls_ca": None, "nats_tls_cert": None})
        with pytest.raises(ConnectError) as err:
            await connect_nats(url, name="tls", auth=nats_auth(untrusted), first_attempt_for=30)
        assert "TLS" in str(err.value)
        with pytest.raises(ConnectError) as rerr:
            await connect_redis(
                settings.model_copy(update={"redis_tls_ca": tmp_path / "tls" / "server.pem"}),
                first_attempt_for=30,
            )
        assert "TLS" in str(rerr.value)
        # A TLS file that cannot be read is said as such, for Redis as for NATS, before any try.
        missing = tmp_path / "tls" / "missing.pem"
        with pytest.raises(ConnectError, match="cannot load the TLS files"):
            await connect_redis(settings.model_copy(update={"redis_tls_ca": missing}))
        with pytest.raises(ConnectError, match="cannot load the TLS files"):
            nats_auth(settings.model_copy(update={"nats_tls_ca": missing}))
    finally:
        redis_svc.stop()
        nats_svc.stop()


# ---------------------------------------------------------------------------- the API
def _api_settings(
    nats_server: Service, redis_server: Service, tmp_path: Path, secret_key: str, **extra: Any
) -> ApiSettings:
    return api_settings(
        nats_server.extra["url:api"], redis_server.url, secret_key, tmp_path, **extra
    )


@pytest.fixture
async def client(
    nats_server: Service, redis_server: Service, tmp_path: Path, secret_key: str
) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = _api_settings(
        nats_server,
        redis_server,
        tmp_path,
        secret_key,
        launch_timeout=0.5,
        operator_token=OPERATOR,
        cors_origins="https://ops.example.com",
        launch_rate=2,
        max_cpu_quota=200_000,
    )
    async with AsyncTestClient(app=create_app(settings)) as c:
        yield c


async def _worker_alive(redis_server: Service, max_sessions: int | None = None) -> None:
    redis = Redis.from_url(redis_server.url)
    await SessionStore(redis).heartbeat("w-fake", WorkerInfo(max_sessions=max_sessions), ttl=30)
    await redis.aclose()


async def test_config_writes_need_the_operator_token(client: AsyncTestClient[Any]) -> None:
    r = await client.post("/api/configs/custom", json=CUSTOM)
    assert r.status_code == 401 and "operator token" in r.json()["detail"]
    bad = {"Authorization": "Bearer guess"}
    assert (await client.post("/api/configs/custom", json=CUSTOM, headers=bad)).status_code == 401
    op = {"Authorization": f"Bearer {OPERATOR}"}
    assert (await client.post("/api/configs/custom", json=CUSTOM, headers=op)).status_code == 201
    # Reads stay open.
    assert (await client.get("/api/configs/perimeter")).status_code == 200
    assert (await client.delete("/api/configs/custom/perimeter")).status_code == 401
    assert (await client.delete("/api/configs/custom/perimeter", headers=op)).status_code == 204


async def test_config_writes_are_refused_when_no_token_is_configured(
    nats_server: Service, redis_server: Service, tmp_path: Path, secret_key: str
) -> None:
    settings = _api_settings(nats_server, redis_server, tmp_path, secret_key)
    async with AsyncTestClient(app=create_app(settings)) as c:
        r = await c.post("/api/configs/custom", json=CUSTOM, headers={"Authorization": "Bearer "})
        assert r.status_code == 403 and "AGC_OPERATOR_TOKEN" in r.json()["detail"]


async def test_a_text_plain_launch_is_415(
    client: AsyncTestClient[Any], redis_server: Service
) -> None:
    await _worker_alive(redis_server)
    body = json.dumps({"api_key": "sk-x", "config_id": "code-assistant"})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        r = await client.post(
            "/api/agents/launch", content=body, headers={"Content-Type": content_type}
        )
        assert r.status_code == 415, (content_type, r.text)
        assert r.json()["error"] == "unsupported_media_type"
    r = await client.post("/api/configs/validate", content=body, headers={"Content-Type": ""})
    assert r.status_code == 415


async def test_cross_origin_requests_need_the_allowlist(client: AsyncTestClient[Any]) -> None:
    evil = {"Origin": "https://evil.example"}
    r = await client.post("/api/agents/launch", json={"api_key": "k"}, headers=evil)
    assert r.status_code == 403 and r.json()["error"] == "cross_origin_refused"
    assert (await client.get("/api/configs/", headers=evil)).status_code == 403
    pre = {**evil, "Access-Control-Request-Method": "POST"}
    assert (await client.options("/api/agents/launch", headers=pre)).status_code == 403
    # The allowlisted origin gets its preflight answered and its responses readable.
    ok = {"Origin": "https://ops.example.com"}
    r = await client.options(
        "/api/agents/launch",
        headers={
            **ok,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "https://ops.example.com"
    assert "POST" in r.headers["access-control-allow-methods"]
    r = await client.get("/api/configs/", headers=ok)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://ops.example.com"
    # The API's own origin (the dashboard it serves) needs no allowlist.
    same = {"Origin": "http://testserver.local"}
    assert (await client.get("/api/configs/", headers=same)).status_code == 200


async def test_every_response_carries_the_browser_safety_headers(
    client: AsyncTestClient[Any],
) -> None:
    for path in ("/api/configs/", "/health", "/api/nowhere", "/schema/openapi.json"):
        r = await client.get(path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    # The schema stays; the viewers that load CDN scripts are off.
    assert (await client.get("/schema/openapi.json")).status_code == 200
    assert (await client.get("/schema/openapi.yaml")).status_code == 200
    for viewer in ("/schema/swagger", "/schema/redoc", "/schema/elements", "/schema/rapidoc"):
        assert (await client.get(viewer)).status_code == 404, viewer


async def test_a_config_above_a_ceiling_is_422_naming_the_field(
    client: AsyncTestClient[Any], redis_server: Service
) -> None:
    await _worker_alive(redis_server)
    big = {**CUSTOM, "resource_limits": {"cpu_quota": 400_000}}
    r = await client.post("/api/agents/launch", json={"api_key": "k", "config": big})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["resource_limits.cpu_quota"]
    assert "AGC_MAX_CPU_QUOTA" in r.json()["errors"][0]["message"]
    op = {"Authorization": f"Bearer {OPERATOR}"}
    assert (await client.post("/api/configs/custom", json=big, headers=op)).status_code == 422
    assert (await client.post("/api/configs/validate", json=big)).status_code == 422


async def test_full_workers_answer_a_launch_at_once_with_503(
    client: AsyncTestClient[Any], redis_server: Service, nats_server: Service, streams: None
) -> None:
    await _worker_alive(redis_server, max_sessions=0)
    t0 = time.monotonic()
    r = await client.post(
        "/api/agents/launch", json={"api_key": "k", "config_id": "code-assistant"}
    )
    assert time.monotonic() - t0 < 1.0
    assert r.status_code == 503 and r.json()["reason"] == "no_capacity"
    assert int(r.headers["retry-after"]) > 0
    # Nothing was queued for a worker to start later.
    admin = await nats.connect(nats_server.url)
    assert (await admin.jetstream().stream_info(subjects.CMD_STREAM)).state.messages == 0
    await admin.close()


async def test_the_launch_rate_is_limited_per_key(
    client: AsyncTestClient[Any], redis_server: Service
) -> None:
    await _worker_alive(redis_server)
    body = {"api_key": "sk-rate", "config_id": "code-assistant"}
    # Nobody answers these launches: each times out (504) and is cancelled, never run later.
    for _ in range(2):
        r = await client.post("/api/agents/launch", json=body)
        assert r.status_code == 504 and "cancelled" in r.json()["detail"]
        sid = r.json()["session_id"]
        rec = await client.get(
            f"/api/agents/sessions/{sid}", headers={"Authorization": "Bearer sk-rate"}
        )
        assert rec.json()["status"] == "failed"
    r = await client.post("/api/agents/launch", json=body)
    assert r.status_code == 429 and r.json()["limit"] == "launch_rate"
    assert 0 < int(r.headers["retry-after"]) <= 60
    # Another key has its own budget.
    r = await client.post("/api/agents/launch", json={**body, "api_key": "sk-other"})
    assert r.status_code == 504


@pytest.fixture
def free_tcp_port() -> int:
    import socket

    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_start_nats_with_auth_hands_out_role_urls(
    tmp_path: Path, credentials: Credentials
) -> None:
    svc = start_nats_with_auth(tmp_path / "n2", credentials)
    try:
        for role in ("api", "worker", "reader"):
            nc = await connect_nats(svc.extra[f"url:{role}"], name=role)
            await nc.close()
    finally:
        svc.stop()


@pytest.mark.parametrize("role", ["api", "worker"])
def test_a_process_with_a_wrong_credential_says_why_and_exits(
    role: str, nats_server: Service, redis_server: Service, tmp_path: Path, secret_key: str
) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("AGC_")}
    env |= {
        "AGC_SECRET_KEY": secret_key,
        "AGC_STATE_DIR": str(tmp_path),
        "AGC_PORT": "0",
        "AGC_NATS_URL": nats_server.extra[f"url:{role}"],
        # Redis without its password: refused at once, before anything is served.
        "AGC_REDIS_URL": redis_server.extra["url:none"],
    }
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "agcluster.cli", role],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert time.monotonic() - t0 < 30
    assert "Redis" in proc.stderr and "refused the credentials" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
