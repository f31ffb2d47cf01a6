"""Connect to NATS and Redis: credentials and TLS from settings, reconnects that never give up
once connected, and a clear :class:`ConnectError` when a credential or certificate is wrong."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog
from nats.aio.client import Client as NATS
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from broker.settings import CommonSettings

log = structlog.get_logger("agc.nats")


class ConnectError(RuntimeError):
    """NATS or Redis refused us (credentials, permissions, TLS) or never answered.

    The message is a complete sentence for an operator; no traceback is needed to act on it.
    """


@dataclass(frozen=True, slots=True)
class NatsAuth:
    """User/password and TLS for NATS; empty fields mean none (credentials in the URL work too)."""

    user: str = ""
    password: str = ""
    tls: ssl.SSLContext | None = None


@dataclass(frozen=True, slots=True)
class ClientTls:
    """A client's TLS files for one server: the CA that signed its certificate and, for mutual
    TLS, our certificate and its key. Neither a CA nor a certificate means plain TCP."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.ca or self.cert)

    def context(self) -> ssl.SSLContext | None:
        """A context verifying the server against ``ca`` (the system's CAs without one) and
        presenting ``cert``; a file that cannot be loaded is a :class:`ConnectError`."""
        if not self.enabled:
            return None
        ca, cert, key = self.ca, self.cert, self.key
        try:
            ctx = ssl.create_default_context(cafile=str(ca) if ca else None)
            if cert:
                ctx.load_cert_chain(str(cert), str(key) if key else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(
                f"cannot load the TLS files ({ca or ''} {cert or ''}): {exc}"
            ) from exc
        return ctx

    def redis_options(self) -> dict[str, str | None]:
        """The same files as redis-py's connection options (it builds its own context from
        paths); loaded once here first, so a bad file fails as clearly as for NATS."""
        if self.context() is None:
            return {}
        return {
            "ssl_ca_certs": str(self.ca) if self.ca else None,
            "ssl_certfile": str(self.cert) if self.cert else None,
            "ssl_keyfile": str(self.key) if self.key else None,
        }


def nats_tls(settings: CommonSettings) -> ClientTls:
    return ClientTls(settings.nats_tls_ca, settings.nats_tls_cert, settings.nats_tls_key)


def redis_tls(settings: CommonSettings) -> ClientTls:
    return ClientTls(settings.redis_tls_ca, settings.redis_tls_cert, settings.redis_tls_key)


def nats_auth(settings: CommonSettings) -> NatsAuth:
    return NatsAuth(
        user=settings.nats_user,
        password=settings.nats_password.get_secret_value(),
        tls=nats_tls(settings).context(),
    )


def _where(url: str) -> str:
    """Servers of a URL list without any user or password, for messages and logs."""
    parts = [urlsplit(u.strip()) for u in url.split(",")]
    return ",".join(p.netloc.rpartition("@")[2] or p.path for p in parts)


def _fatal(exc: BaseException) -> str | None:
    """Why a connection error will not go away by retrying (None: retry)."""
    text = str(exc).lower()
    if "authorization violation" in text or "authentication" in text:
        return "NATS refused the credentials (check AGC_NATS_USER / AGC_NATS_PASSWORD)"
    if isinstance(exc, ssl.SSLError):
        return f"the TLS handshake with NATS failed ({exc}); check AGC_NATS_TLS_*"
    if "tls" in text and "required" in text:
        return "NATS requires TLS; set AGC_NATS_TLS_CA (and use a tls:// URL)"
    return None


async def connect_nats(
    url: str,
    *,
    name: str,
    auth: NatsAuth | None = None,
    connect_timeout: float = 5.0,
    first_attempt_for: float = 60.0,
) -> NATS:
    """Connect to ``url`` (comma-separated for several servers), reconnecting forever after.

    The first connection is retried for ``first_attempt_for`` seconds, so a stack whose
    processes start in any order still comes up; a refused credential or a failed TLS
    handshake ends it at once with :class:`ConnectError`.
    """
    auth = auth or NatsAuth()
    where = _where(url)
    fatal: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    connected = False

    async def _disconnected() -> None:
        log.warning("nats disconnected")

    async def _reconnected() -> None:
        server = nc.connected_url
        log.info("nats reconnected", url=f"{server.hostname}:{server.port}" if server else "")

    async def _error(exc: Exception) -> None:
        why = _fatal(exc)
        if not connected and why is not None:
            if not fatal.done():
                fatal.set_result(why)
            return
        if not connected:
            log.warning("nats not reachable yet", servers=where, error=str(exc) or repr(exc))
            return
        log.warning("nats error", error=str(exc))

    async def _closed() -> None:
        log.info("nats connection closed")

    nc = NATS()
    options: dict[str, Any] = {}
    if auth.user:
        options |= {"user": auth.user, "password": auth.password}
    if auth.tls is not None:
        options["tls"] = auth.tls
    attempt = asyncio.ensure_future(
        nc.connect(
            servers=[u.strip() for u in url.split(",")],
            name=name,
            connect_timeout=connect_timeout,  # type: ignore[arg-type]  # float works; stub says int
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,  # type: ignore[arg-type]
            disconnected_cb=_disconnected,
            reconnected_cb=_reconnected,
            error_cb=_error,
            closed_cb=_closed,
            **options,
        )
    )
    waiting: set[asyncio.Future[Any]] = {attempt, fatal}
    done, _ = await asyncio.wait(waiting, timeout=first_attempt_for, return_when="FIRST_COMPLETED")
    if attempt in done:
        attempt.result()
        connected = True
        return nc
    attempt.cancel()
    with contextlib.suppress(BaseException):
        await attempt
    with contextlib.suppress(Exception):
        await nc.close()
    if fatal.done():
        raise ConnectError(f"cannot connect to NATS at {where}: {fatal.result()}")
    raise ConnectError(f"NATS at {where} did not answer within {first_attempt_for:.0f} s")


REDIS_MAX_CONNECTIONS = 100
REDIS_POOL_WAIT = 10.0  # seconds a request waits for a free connection before it fails


async def connect_redis(settings: CommonSettings, *, first_attempt_for: float = 60.0) -> Redis:
    """A Redis client with the settings' user, password and TLS, checked with one PING.

    An unreachable Redis is retried for ``first_attempt_for`` seconds; refused credentials or
    a user without the platform's permissions end it at once with :class:`ConnectError`.
    """
    options: dict[str, Any] = {}
    if settings.redis_user:
        options["username"] = settings.redis_user
    if password := settings.redis_password.get_secret_value():
        options["password"] = password
    tls = redis_tls(settings)
    options |= tls.redis_options()
    url = settings.redis_url
    if tls.enabled and url.startswith("redis://"):
        url = "rediss://" + url.removeprefix("redis://")
    where = _where(url)
    # redis-py's default pool refuses (MaxConnectionsError, a 503) once 100 connections are in
    # use: a burst of requests (a thousand SSE clients connecting at once) waits for one instead.
    pool = BlockingConnectionPool.from_url(
        url, max_connections=REDIS_MAX_CONNECTIONS, timeout=REDIS_POOL_WAIT, **options
    )
    client = Redis.from_pool(pool)
    deadline = asyncio.get_running_loop().time() + first_attempt_for
    while True:
        try:
            await client.ping()
            return client
        except (AuthenticationError, NoPermissionError) as exc:
            await client.aclose()
            raise ConnectError(
                f"Redis at {where} refused the credentials ({exc}); "
                "check AGC_REDIS_USER / AGC_REDIS_PASSWORD"
            ) from None
        except ResponseError as exc:
            await client.aclose()
            raise ConnectError(f"Redis at {where} refused us: {exc}") from None
        except (RedisConnectionError, OSError) as exc:
            text = str(exc).lower()
            if any(w in text for w in ("authenticat", "noauth", "password", "user is disabled")):
                # No credentials sent (redis-py reports a refused HELLO as a connection error).
                await client.aclose()
                raise ConnectError(
                    f"Redis at {where} refused the credentials ({exc}); "
                    "check AGC_REDIS_USER / AGC_REDIS_PASSWORD"
                ) from None
            if isinstance(exc.__cause__ or exc.__context__, ssl.SSLError) or "SSL" in str(exc):
                await client.aclose()
                raise ConnectError(
                    f"the TLS handshake with Redis at {where} failed ({exc}); check AGC_REDIS_TLS_*"
                ) from None
            if asyncio.get_running_loop().time() >= deadline:
                await client.aclose()
                raise ConnectError(
                    f"Redis at {where} did not answer within {first_attempt_for:.0f} s ({exc})"
                ) from None
            log.warning("redis not reachable yet", servers=where, error=str(exc))
            await asyncio.sleep(0.5)


async def check_connections(settings: CommonSettings, *, name: str) -> None:
    """Connect to NATS and Redis once and leave: a process checks its credentials before it
    starts serving, so a wrong one is one clear line (:class:`ConnectError`), not a traceback."""
    nc = await connect_nats(settings.nats_url, name=name, auth=nats_auth(settings))
    try:
        redis = await connect_redis(settings)
        await redis.aclose()
    finally:
        await nc.close()
