"""NATS and Redis for tests with authentication on, as ``agcluster up`` runs them.

NATS gets the platform's users (one per role, with their permissions) plus an unrestricted
test user: ``Service.url`` logs in as that user, so a test's own client may set up anything;
``Service.extra["url:<role>"]`` logs in as a platform role (the test stack runs its API and
workers with those) and ``extra["url:none"]`` is the bare URL (no credentials).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from agcluster.credentials import ROLES, Credentials, nats_auth_conf, with_userinfo
from agcluster.procs import Service, start_nats, start_redis

TEST_USER = "agc-test"


def start_nats_with_auth(store_dir: Path, creds: Credentials, **kwargs: Any) -> Service:
    conf = creds.dir / "nats-test.conf"
    password = conf.with_suffix(".pw").read_text() if conf.exists() else secrets.token_urlsafe(16)
    conf.with_suffix(".pw").write_text(password)
    conf.write_text(nats_auth_conf(creds, [{"user": TEST_USER, "password": password}]))
    svc = start_nats(store_dir, conf=conf, **kwargs)
    svc.extra["url:none"] = svc.url
    for role in ROLES:
        svc.extra[f"url:{role}"] = creds.nats_url(svc.url, role)
    svc.url = with_userinfo(svc.url, TEST_USER, password)
    return svc


def start_redis_with_acl(data_dir: Path, creds: Credentials, **kwargs: Any) -> Service:
    extra = ["--aclfile", str(creds.redis_acl), *kwargs.pop("extra_args", ())]
    svc = start_redis(data_dir, extra_args=extra, **kwargs)
    svc.extra["url:none"] = svc.url
    svc.url = creds.redis_url(svc.url)
    return svc
