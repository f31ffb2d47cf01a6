"""Riding through a NATS failover: retry what a moment later will succeed.

While a NATS node restarts or a stream (or JetStream's meta group) elects a new leader — a few
seconds on a three-node cluster — a publish or a JetStream API call can fail with no stream
answering, a timeout or a 503. Every platform publish carries a ``Nats-Msg-Id``, so re-sending
one JetStream already stored is dropped as a duplicate: a retry never doubles a message.
Errors that a retry cannot fix (too large, a bad subject, a 4xx from JetStream) are raised at
once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import APIError

T = TypeVar("T")


def is_permanent(exc: BaseException) -> bool:
    """Whether ``exc`` from NATS would come back on every retry.

    A 4xx from JetStream (other than a 408 timeout) refuses the request itself, as do a
    payload over the server's limit and a malformed subject. Anything else (no stream
    answering, no leader yet, a timeout, a reconnect) is worth the same call again shortly.
    """
    if isinstance(exc, APIError):
        return exc.code is not None and 400 <= exc.code < 500 and exc.code != 408
    return isinstance(exc, nats.errors.MaxPayloadError | nats.errors.BadSubjectError)


async def retry_transient(
    op: Callable[[], Awaitable[T]],
    *,
    within: float | None,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """``await op()``, again after a growing pause while it fails with a transient error.

    ``within``: seconds to keep trying (None: until it succeeds or is cancelled). When they
    run out, the last error is raised; a permanent one (:func:`is_permanent`) at once.
    """
    deadline = None if within is None else time.monotonic() + within
    delay = 0.05
    while True:
        try:
            return await op()
        except Exception as exc:
            if is_permanent(exc):
                raise
            if deadline is not None and time.monotonic() + delay > deadline:
                raise
            if on_retry is not None:
                on_retry(exc)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def publish_retrying(
    js: JetStreamContext,
    subject: str,
    data: bytes,
    msg_id: str,
    *,
    within: float | None,
    on_retry: Callable[[BaseException], None] | None = None,
) -> PubAck:
    """Publish ``data`` with ``Nats-Msg-Id: msg_id`` through :func:`retry_transient`."""
    return await retry_transient(
        lambda: js.publish(subject, data, headers={"Nats-Msg-Id": msg_id}),
        within=within,
        on_retry=on_retry,
    )
