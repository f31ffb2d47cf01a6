"""A JetStream pull subscription that survives NATS outages and server restarts."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig

from broker import subjects

log = structlog.get_logger("agc.pull")


class DurablePull:
    """Fetch from a durable consumer, binding (again) whenever NATS comes back.

    ``fetch`` never raises for transient trouble: it returns no messages (after a short pause)
    and, after a few failures in a row, drops the subscription so the next call binds afresh.
    """

    def __init__(
        self, js: JetStreamContext, config: ConsumerConfig, *, rebind_after: int = 3
    ) -> None:
        self.js = js
        self.config = config
        self.rebind_after = rebind_after
        self._sub: JetStreamContext.PullSubscription | None = None
        self._failures = 0

    async def fetch(self, batch: int, timeout: float = 1.0) -> list[Msg]:
        if self._sub is None:
            try:
                self._sub = await self.js.pull_subscribe(
                    self.config.filter_subject or "",
                    durable=self.config.durable_name,
                    stream=subjects.CMD_STREAM,
                    config=self.config,
                )
            except Exception as exc:
                log.warning(
                    "consumer unavailable",
                    consumer=self.config.durable_name,
                    error=str(exc) or type(exc).__name__,
                )
                await asyncio.sleep(0.5)
                return []
        try:
            msgs = await self._sub.fetch(batch=batch, timeout=timeout)
        except (NatsTimeout, TimeoutError):
            self._failures = 0
            return []
        except Exception as exc:
            self._failures += 1
            log.warning(
                "fetch failed",
                consumer=self.config.durable_name,
                error=str(exc) or type(exc).__name__,
            )
            if self._failures >= self.rebind_after:
                await self.close()
            await asyncio.sleep(0.5)
            return []
        self._failures = 0
        return msgs

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub, self._failures = None, 0
