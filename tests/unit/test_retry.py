"""broker.retry: what a failover throws is retried, what a retry cannot fix is raised at once."""

from __future__ import annotations

import asyncio

import nats.errors
import pytest
from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError

from broker.retry import is_permanent, retry_transient


@pytest.mark.parametrize(
    ("exc", "permanent"),
    [
        (NoStreamResponseError(), False),
        (ServiceUnavailableError(code=503), False),
        (APIError(code=408), False),
        (nats.errors.TimeoutError(), False),
        (nats.errors.ConnectionClosedError(), False),
        (APIError(code=400, err_code=10077), True),
        (nats.errors.MaxPayloadError(), True),
        (nats.errors.BadSubjectError(), True),
    ],
)
def test_what_a_retry_can_fix(exc: Exception, permanent: bool) -> None:
    assert is_permanent(exc) is permanent


def test_a_transient_failure_is_retried_until_it_succeeds() -> None:
    failures = [NoStreamResponseError(), nats.errors.TimeoutError()]
    seen: list[str] = []

    async def op() -> str:
        if failures:
            raise failures.pop(0)
        return "stored"

    out = asyncio.run(
        retry_transient(op, within=5, on_retry=lambda e: seen.append(type(e).__name__))
    )
    assert out == "stored"
    assert seen == ["NoStreamResponseError", "TimeoutError"]


def test_a_permanent_failure_is_raised_at_once() -> None:
    calls = 0

    async def op() -> None:
        nonlocal calls
        calls += 1
        raise APIError(code=400, description="maximum messages exceeded")

    with pytest.raises(APIError):
        asyncio.run(retry_transient(op, within=5))
    assert calls == 1


def test_retrying_stops_when_its_time_is_up() -> None:
    calls = 0

    async def op() -> None:
        nonlocal calls
        calls += 1
        raise NoStreamResponseError()

    with pytest.raises(NoStreamResponseError):
        asyncio.run(retry_transient(op, within=0.2))
    assert 2 <= calls <= 5
