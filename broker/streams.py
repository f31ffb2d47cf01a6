"""JetStream streams and the object-store bucket, and an idempotent ``ensure_streams``."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError

from broker import subjects

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Durations in float seconds, sizes in bytes; converted at the wire by nats-py."""

    events_max_age: float = 7 * DAY
    events_max_bytes: int = -1
    commands_max_age: float = 1 * DAY
    # Window in which a re-sent command with the same ``Nats-Msg-Id`` is dropped.
    duplicate_window: float = 120.0
    # 3 on a three-node cluster: a write is acknowledged once a majority has it (see
    # docs/nats-cluster.md for what that buys and what it does not).
    replicas: int = 1


def command_stream_config(s: StreamSettings) -> StreamConfig:
    return StreamConfig(
        name=subjects.CMD_STREAM,
        subjects=[f"{subjects.CMD_PREFIX}.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        max_age=s.commands_max_age,
        duplicate_window=s.duplicate_window,
        num_replicas=s.replicas,
    )


def event_stream_config(s: StreamSettings) -> StreamConfig:
    return StreamConfig(
        name=subjects.EVT_STREAM,
        subjects=[subjects.ALL_EVENTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=s.events_max_age,
        max_bytes=s.events_max_bytes,
        duplicate_window=s.duplicate_window,
        num_replicas=s.replicas,
    )


_COMPARED = (
    "subjects",
    "retention",
    "storage",
    "discard",
    "max_age",
    "max_bytes",
    "duplicate_window",
    "num_replicas",
)


def _differs(have: StreamConfig, want: StreamConfig) -> bool:
    # A field we leave unset (None) is whatever the server defaults it to.
    return any(
        getattr(want, f) is not None and getattr(have, f) != getattr(want, f) for f in _COMPARED
    )


async def ensure_streams(js: JetStreamContext, settings: StreamSettings | None = None) -> None:
    """Create or update the platform's streams and bucket; safe to call from every process."""
    s = settings or StreamSettings()
    for cfg in (command_stream_config(s), event_stream_config(s)):
        try:
            info = await js.stream_info(cfg.name or "")
        except NotFoundError:
            try:
                await js.add_stream(cfg)
            except BadRequestError:
                # Another process created it between our lookup and our add.
                await js.update_stream(cfg)
        else:
            # Workers may not change streams (their NATS role denies it): only a process whose
            # settings differ from the stream's (an operator's change) updates it.
            if _differs(info.config, cfg):
                await js.update_stream(cfg)
    try:
        await js.object_store(subjects.FILES_BUCKET)
    except NotFoundError:
        from nats.js.api import ObjectStoreConfig

        await js.create_object_store(
            subjects.FILES_BUCKET,
            config=ObjectStoreConfig(storage=StorageType.FILE, ttl=3600.0, replicas=s.replicas),
        )
