"""Wait on a condition, never on a fixed sleep: this machine's speed varies run to run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx


def wait_until(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``cond`` until it returns something truthy and return that (HTTP errors: not yet).

    Raises ``AssertionError`` naming ``what`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = cond()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


async def until(
    cond: Callable[[], Any | Awaitable[Any]],
    timeout: float = 10.0,
    what: str = "the condition",
    every: float = 0.02,
) -> Any:
    """The asyncio form of :func:`wait_until` (``cond`` may be a coroutine function)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(every)
