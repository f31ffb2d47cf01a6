"""Fixtures: real nats-server and redis-server per test, the scripted model server, the stack."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from redis.asyncio import Redis

from agcluster.credentials import Credentials, ensure_credentials
from agcluster.procs import Service
from broker.connect import connect_nats
from tests.modelserver.fixture import model_server  # noqa: F401  (re-exported fixture)
from tests.modelserver.server import ModelServer
from tests.support.auth import start_nats_with_auth, start_redis_with_acl
from tests.support.stack import Stack, running_stack


@pytest.fixture
def credentials(tmp_path: Path) -> Credentials:
    """Fresh platform credentials (NATS users per role, Redis ACL user, operator token)."""
    return ensure_credentials(tmp_path / "credentials")


@pytest.fixture
def nats_server(tmp_path: Path, credentials: Credentials) -> Iterator[Service]:
    """A fresh nats-server with JetStream on an ephemeral port, users and permissions on.

    ``url`` logs in as the API role; ``extra["url:worker"]`` etc. as the others.
    """
    svc = start_nats_with_auth(tmp_path / "nats", credentials)
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture
def redis_server(tmp_path: Path, credentials: Credentials) -> Iterator[Service]:
    """A fresh redis-server with AOF on a unix socket and its ACL on (``url`` logs in)."""
    svc = start_redis_with_acl(tmp_path / "redis", credentials)
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture
async def nc(nats_server: Service) -> AsyncIterator[NATS]:
    client = await connect_nats(nats_server.url, name="test")
    try:
        yield client
    finally:
        await client.drain()


@pytest.fixture
async def redis(redis_server: Service) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def secret_key() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def shared_model_server() -> Iterator[ModelServer]:
    """One scripted model server for the whole run (scripts are named per test)."""
    server = ModelServer("127.0.0.1", 0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, shared_model_server: ModelServer
) -> Iterator[Stack]:
    """The real platform (NATS, Redis, API, one worker, Docker) shared by the e2e tests."""
    with running_stack(tmp_path_factory.mktemp("stack"), shared_model_server.base_url) as s:
        s.model = shared_model_server  # type: ignore[attr-defined]
        yield s
