"""Stream definitions against a real nats-server."""

from __future__ import annotations

from nats.aio.client import Client as NATS
from nats.js.api import RetentionPolicy

from broker import subjects
from broker.streams import StreamSettings, ensure_streams


async def test_ensure_streams_is_idempotent_and_correct(nc: NATS) -> None:
    js = nc.jetstream()
    await ensure_streams(js, StreamSettings(events_max_age=3600))
    await ensure_streams(js, StreamSettings(events_max_age=7200))  # updates in place
    cmd = await js.stream_info(subjects.CMD_STREAM)
    evt = await js.stream_info(subjects.EVT_STREAM)
    assert cmd.config.retention == RetentionPolicy.WORK_QUEUE
    assert evt.config.retention == RetentionPolicy.LIMITS
    assert evt.config.max_age == 7200
    await js.object_store(subjects.FILES_BUCKET)


async def test_duplicate_commands_are_dropped(nc: NATS) -> None:
    js = nc.jetstream()
    await ensure_streams(js)
    sid = "conv-0123456789abcdef"
    a = await js.publish(subjects.session_cmd(sid, "chat"), b"{}", headers={"Nats-Msg-Id": "t1"})
    b = await js.publish(subjects.session_cmd(sid, "chat"), b"{}", headers={"Nats-Msg-Id": "t1"})
    assert b.duplicate and a.seq == b.seq
