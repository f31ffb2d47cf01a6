"""Sessions of a lost host: ended once nobody could adopt them.

When a worker dies, a live worker on the same Docker engine adopts its sessions within one
reconcile pass after its liveness key expires. When the worker's host is gone (or no live
worker shares its engine) nobody can: its containers are visible to no one. After the owner
has been seen dead for ``AGC_LOST_HOST_TIMEOUT`` seconds (on Redis's clock), the first live
worker to look ends each such session, once (``SessionStore.end_lost``):

- the record becomes ``failed`` (``stopped`` if it was being stopped), with the reason;
- every chat still waiting in JetStream for the lost owner gets an ``error`` event of its turn;
- the session gets an ``error`` event (``host_lost``, fatal) and ``session.stopped``, so every
  SSE client, the chat streams and the waiting JSON chats end with the reason;
- its queued commands and its command consumer are deleted.

Sessions still being launched are left alone: their launch is redelivered to a live worker.
The transcript stays on the lost host's home volume (docs/lost-hosts.md says how to get it).
"""

from __future__ import annotations

import contextlib

import structlog
from nats.js.errors import NotFoundError

from broker import subjects
from broker.commands import Chat, decode_command
from broker.events import ErrorEvent, SessionStopped, encode_event
from workers.host import Host

log = structlog.get_logger("agc.worker")

CODE = "host_lost"


async def end_lost_sessions(host: Host) -> int:
    """End the sessions of every worker dead longer than the timeout; return how many."""
    store, me = host.store, host.worker_id
    timeout = host.settings.lost_host_timeout
    ended = 0
    for wid in await store.known_workers():
        if wid == me or await store.is_alive(wid):
            continue
        owned = await store.owned_by(wid)
        if not owned:
            continue
        dead_for = await store.dead_for(wid)
        if dead_for < timeout:
            continue
        for sid in owned:
            if await _end(host, wid, sid, dead_for):
                ended += 1
    return ended


async def _end(host: Host, wid: str, sid: str, dead_for: float) -> bool:
    message = (
        f"the session's host is lost: its worker {wid} stopped heartbeating {dead_for:.0f} s "
        "ago and no live worker can reach its container"
    )
    previous = await host.store.end_lost(sid, wid, message)
    if previous is None:
        return False  # adopted, over, still launching, or another worker got there first
    log.warning(
        "session of a lost host ended",
        session_id=sid,
        lost_worker=wid,
        worker_id=host.worker_id,
        status=previous,
    )
    js = host.js
    for chat in await _queued_chats(host, sid):
        await js.publish(
            subjects.events(sid),
            encode_event(
                ErrorEvent(
                    session_id=sid,
                    turn_id=chat.turn_id,
                    code=CODE,
                    message="this chat never ran: " + message,
                    fatal=True,
                )
            ),
        )
    if previous != "stopping":
        await js.publish(
            subjects.events(sid),
            encode_event(ErrorEvent(session_id=sid, code=CODE, message=message, fatal=True)),
        )
    reason = "deleted" if previous == "stopping" else "failed"
    await js.publish(
        subjects.events(sid), encode_event(SessionStopped(session_id=sid, reason=reason))
    )
    with contextlib.suppress(Exception):  # already gone is fine
        await js.purge_stream(subjects.CMD_STREAM, subject=subjects.session_cmd_filter(sid))
    with contextlib.suppress(Exception):
        await js.delete_consumer(subjects.CMD_STREAM, subjects.session_consumer(sid))
    return True


async def _queued_chats(host: Host, sid: str) -> list[Chat]:
    """The chats waiting in JetStream for the session's lost owner, oldest first."""
    out: list[Chat] = []
    seq = 0
    while True:
        try:
            msg = await host.js.get_msg(
                subjects.CMD_STREAM,
                seq=seq + 1,
                subject=subjects.session_cmd(sid, "chat"),
                next=True,
            )
        except NotFoundError:
            return out
        seq = int(msg.seq or seq + 1)
        with contextlib.suppress(ValueError):
            cmd = decode_command(msg.data or b"")
            if isinstance(cmd, Chat):
                out.append(cmd)
