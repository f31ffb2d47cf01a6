"""Generate and keep the platform's credentials: NATS users per role, the Redis ACL user, the
operator token.

Everything lives in one directory (``<state dir>/credentials`` for ``agcluster up``; any
directory for compose or another host), created once and reused:

- ``credentials.json`` (0600): the passwords and the operator token, the one source of truth;
- ``nats-auth.conf`` (0600): the ``authorization`` block nats-server includes, one user per
  role with the subject permissions below;
- ``redis.acl`` (0600): Redis ACL users (``default`` off; passwords stored as SHA-256 only);
- ``operator.token`` (0600): the token custom-config writes need (``AGC_OPERATOR_TOKEN``);
- ``api.env``, ``worker.env``, ``reader.env`` (0600): ``AGC_*`` lines a process of that role
  reads (``set -a; . ./worker.env; set +a``, or compose's ``env_file``), so no password is ever
  in a command line.

Roles on NATS (subjects from :mod:`broker.subjects`, :mod:`broker.streams`, :mod:`broker.blobs`):

- ``api``: publishes commands and requests, reads events, manages streams, moves blobs;
- ``worker``: publishes events, answers requests, consumes commands and moves blobs; it can
  neither publish a command nor change, delete or purge the command and event streams;
- ``reader``: the direct subscribers the README invites: it subscribes to ``agc.evt.>`` and
  reads ``AGC_EVT`` through JetStream consumers, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from broker import subjects

ROLES = ("api", "worker", "reader")
REDIS_USER = "agc"
_EVT = subjects.EVT_STREAM
_CMD = subjects.CMD_STREAM
_FILES = subjects.FILES_BUCKET

# Replies to requests (JetStream API calls, file operations, pulls) come back on inboxes.
_INBOX = "_INBOX.>"
_JS_ACKS = ["$JS.ACK.>", "$JS.FC.>"]

NATS_PERMISSIONS: dict[str, dict[str, Any]] = {
    "api": {
        "publish": {
            "allow": [
                f"{subjects.CMD_PREFIX}.>",
                f"{subjects.RPC_PREFIX}.>",
                "$JS.API.>",
                *_JS_ACKS,
                f"$O.{_FILES}.>",
                _INBOX,
            ]
        },
        "subscribe": {"allow": [subjects.ALL_EVENTS, _INBOX]},
    },
    "worker": {
        "publish": {
            "allow": [
                subjects.ALL_EVENTS,
                "$JS.API.>",
                *_JS_ACKS,
                f"$O.{_FILES}.>",
                _INBOX,
            ],
            # Changing a stream could map event subjects onto command subjects (transforms,
            # republish); purging or deleting would drop users' commands.
            "deny": [
                f"{subjects.CMD_PREFIX}.>",
                "$JS.API.STREAM.UPDATE.>",
                "$JS.API.STREAM.DELETE.>",
                f"$JS.API.STREAM.PURGE.{_CMD}",
                f"$JS.API.STREAM.PURGE.{_EVT}",
                f"$JS.API.STREAM.MSG.DELETE.{_CMD}",
                f"$JS.API.STREAM.MSG.DELETE.{_EVT}",
            ],
        },
        "subscribe": {"allow": [f"{subjects.RPC_PREFIX}.>", _INBOX]},
    },
    "reader": {
        "publish": {
            "allow": [
                "$JS.API.INFO",
                "$JS.API.STREAM.NAMES",  # clients look a stream up by subject
                f"$JS.API.STREAM.INFO.{_EVT}",
                f"$JS.API.STREAM.MSG.GET.{_EVT}",
                f"$JS.API.DIRECT.GET.{_EVT}",
                f"$JS.API.DIRECT.GET.{_EVT}.>",
                f"$JS.API.CONSUMER.CREATE.{_EVT}",
                f"$JS.API.CONSUMER.CREATE.{_EVT}.>",
                f"$JS.API.CONSUMER.DURABLE.CREATE.{_EVT}.>",
                f"$JS.API.CONSUMER.INFO.{_EVT}.>",
                f"$JS.API.CONSUMER.DELETE.{_EVT}.>",
                f"$JS.API.CONSUMER.MSG.NEXT.{_EVT}.>",
                f"$JS.ACK.{_EVT}.>",
                f"$JS.FC.{_EVT}.>",
            ]
        },
        "subscribe": {"allow": [subjects.ALL_EVENTS, _INBOX]},
    },
}


class CredentialsError(RuntimeError):
    """The credentials directory cannot be read or written; the message says which file."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """Passwords per NATS role, the Redis user's password, the operator token, and their files."""

    dir: Path
    nats: Mapping[str, str]
    redis_password: str
    operator_token: str
    redis_user: str = REDIS_USER

    @property
    def nats_conf(self) -> Path:
        return self.dir / "nats-auth.conf"

    @property
    def redis_acl(self) -> Path:
        return self.dir / "redis.acl"

    def nats_user(self, role: str) -> str:
        return f"agc-{role}"

    def env_file(self, role: str) -> Path:
        return self.dir / f"{role}.env"

    def role_env(self, role: str) -> dict[str, str]:
        """The ``AGC_*`` variables a process of ``role`` needs to reach NATS (and Redis)."""
        env = {"AGC_NATS_USER": self.nats_user(role), "AGC_NATS_PASSWORD": self.nats[role]}
        if role in ("api", "worker"):
            env |= {"AGC_REDIS_USER": self.redis_user, "AGC_REDIS_PASSWORD": self.redis_password}
        if role == "api":
            env["AGC_OPERATOR_TOKEN"] = self.operator_token
        return env

    def nats_url(self, url: str, role: str) -> str:
        """``url`` (comma-separated servers) with this role's user and password in each."""
        return ",".join(
            with_userinfo(u, self.nats_user(role), self.nats[role]) for u in url.split(",")
        )

    def redis_url(self, url: str) -> str:
        return with_userinfo(url, self.redis_user, self.redis_password)


def with_userinfo(url: str, user: str, password: str) -> str:
    """``url`` with ``user:password@`` (replacing any) — for tests and env files, never argv."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read; never briefly world-readable."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def ensure_credentials(directory: Path, *, operator_token: str | None = None) -> Credentials:
    """Load the credentials in ``directory``, generating what is missing; rewrite derived files.

    ``operator_token`` (e.g. ``AGC_OPERATOR_TOKEN`` from the environment) wins over a stored one.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    source = directory / "credentials.json"
    try:
        stored: dict[str, Any] = json.loads(source.read_text()) if source.exists() else {}
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"cannot read {source}: {exc}") from exc
    nats = {role: stored.get("nats", {}).get(role) or secrets.token_urlsafe(24) for role in ROLES}
    creds = Credentials(
        dir=directory,
        nats=nats,
        redis_password=stored.get("redis_password") or secrets.token_urlsafe(24),
        operator_token=operator_token or stored.get("operator_token") or secrets.token_urlsafe(24),
    )
    data = {
        "nats": dict(creds.nats),
        "redis_password": creds.redis_password,
        "operator_token": creds.operator_token,
    }
    try:
        if data != stored:
            _write_private(source, json.dumps(data, indent=1))
        _write_private(creds.nats_conf, nats_auth_conf(creds))
        _write_private(creds.redis_acl, redis_acl(creds))
        for role in ROLES:
            lines = "".join(f"{k}={v}\n" for k, v in creds.role_env(role).items())
            _write_private(creds.env_file(role), lines)
        _write_private(directory / "operator.token", creds.operator_token + "\n")
    except OSError as exc:
        raise CredentialsError(f"cannot write credentials into {directory}: {exc}") from exc
    return creds


def nats_auth_conf(creds: Credentials, extra_users: list[dict[str, Any]] | None = None) -> str:
    """nats-server's ``authorization`` block (JSON is valid nats-server config syntax).

    ``extra_users`` are added as given (the test suite adds an unrestricted user of its own).
    """
    users = [
        {
            "user": creds.nats_user(role),
            "password": creds.nats[role],
            "permissions": NATS_PERMISSIONS[role],
        }
        for role in ROLES
    ] + list(extra_users or [])
    body = json.dumps({"users": users}, indent=1)
    return f"# generated by agcluster credentials; do not edit\nauthorization {body}\n"


def redis_acl(creds: Credentials) -> str:
    """Redis ACL file: the platform's user, and ``default`` locked behind an unknown password.

    The user may not run administrative commands (CONFIG, FLUSHALL, DEBUG, ACL, ...); its keys
    are not narrowed to ``AGC_REDIS_PREFIX`` because that prefix is per process.
    """
    digest = hashlib.sha256(creds.redis_password.encode()).hexdigest()
    # ``default`` keeps the platform user's rights behind a password nobody is given, rather
    # than being switched off: Redis replays its AOF as ``default`` and EXEC re-checks ACLs during
    # that replay, so a ``default`` without rights silently drops every MULTI/EXEC on restart
    # (Redis 7.0; redis/redis#14541, fixed upstream by #14545). Nobody can log in as it.
    nobody = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
    rights = "~* &* +@all -@dangerous +info +keys"
    return f"user default on #{nobody} {rights}\nuser {creds.redis_user} on #{digest} {rights}\n"
