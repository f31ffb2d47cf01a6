"""Move bytes bigger than a NATS message between the API and a worker, chunked, in ``AGC_FILES``.

Objects are written in the JetStream object-store layout (chunks on
``$O.AGC_FILES.C.<nuid>``, then one meta message on ``$O.AGC_FILES.M.<base64(name)>`` with
size, chunk count and SHA-256), so any NATS tool can inspect them. What the stock clients
cannot do is read an object *while it is being written*, with memory bounded on both sides;
that is what this module adds:

* :class:`BlobWriter` publishes chunks as they are produced (a few JetStream publishes in
  flight), and with ``flow_control`` never gets more than ``window`` chunks ahead of what its
  reader has acknowledged on a core-NATS control inbox, and purges what was acknowledged.
  So a slow HTTP client holds back the zip generator instead of filling the NATS disk (a
  download occupies at most ``window`` of storage, whatever its size), and a reader that
  vanishes (client gone, API restarted) stalls the writer, which gives up after
  ``stall_timeout`` and purges. Such an object is a pipe, not a stored file: its early
  chunks are gone by the time its meta is written.
* :class:`BlobReader` follows one object through an ephemeral pull consumer filtered on its
  chunk and meta subjects, with one pull of ``batch`` messages outstanding at a time: it holds
  at most ``batch`` chunks, whatever the object's size. The meta message ends the object
  (checked against the chunks received); a meta marked deleted means the writer failed, and
  carries its reason.

Objects are deleted by whoever finishes with them (the reader after a download, the worker
after an upload is placed); the bucket's one-hour ``max_age`` removes anything left behind.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hashlib
import json
import re
import time
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from broker import subjects

STREAM = subjects.FILES_STREAM
CHUNK_SIZE = 256 * 1024
WINDOW_CHUNKS = 256  # 64 MiB of lead a writer may have over its reader
ACK_EVERY = 16  # the reader acknowledges every 4 MiB
MAX_INFLIGHT = 16  # JetStream publishes awaiting their ack
STALL_TIMEOUT = 120.0
PULL_BATCH = 16
PULL_EXPIRES = 10.0

_NAME_RE = re.compile(r"^[-/_=.a-zA-Z0-9]{1,200}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_INBOX_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$")


class BlobError(Exception):
    """A transfer failed: the writer aborted, the reader stalled, or chunks went missing."""


class BlobCancelled(BlobError):
    """The reader told the writer it no longer wants the object."""


class BlobRef(msgspec.Struct, kw_only=True):
    """Where an object is: its name, its chunk subject token and the writer's control inbox."""

    name: str
    nuid: str
    control: str = ""
    # Bytes the object will hold, when the writer knows it up front (a single file).
    size: int | None = None

    def check(self) -> BlobRef:
        """Return self if every part is safe to build a subject from, else raise BlobError."""
        if not _NAME_RE.fullmatch(self.name) or not _TOKEN_RE.fullmatch(self.nuid):
            raise BlobError("malformed blob reference")
        if self.control and not _INBOX_RE.fullmatch(self.control):
            raise BlobError("malformed blob control subject")
        return self


def object_name(session_id: str, kind: str) -> str:
    """A fresh object name for one transfer of one session."""
    return f"{session_id}/{kind}/{uuid.uuid4().hex}"


chunk_subject = subjects.files_chunk
meta_subject = subjects.files_meta


async def delete_object(js: JetStreamContext, ref: BlobRef) -> None:
    """Remove an object's chunks and meta (idempotent; errors are not the caller's problem)."""
    for subject in (chunk_subject(ref.nuid), meta_subject(ref.name)):
        with contextlib.suppress(Exception):
            await js.purge_stream(STREAM, subject=subject)


class BlobWriter:
    """Write one object chunk by chunk; see the module docstring for flow control."""

    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        name: str,
        *,
        flow_control: bool,
        size: int | None = None,
        chunk_size: int = CHUNK_SIZE,
        window: int = WINDOW_CHUNKS,
        stall_timeout: float = STALL_TIMEOUT,
    ) -> None:
        self._nc, self._js = nc, js
        self._flow = flow_control
        self._chunk = chunk_size
        self._window = window
        self._stall = stall_timeout
        self.ref = BlobRef(name=name, nuid=uuid.uuid4().hex, size=size).check()
        self._subject = chunk_subject(self.ref.nuid)
        self._buf = bytearray()
        self._sha = hashlib.sha256()
        self._inflight: collections.deque[asyncio.Future[Any]] = collections.deque()
        # Stream sequences of published chunks not purged yet, oldest first.
        self._seqs: collections.deque[int] = collections.deque()
        self._purged = 0
        self._sent = 0
        self.size = 0
        self._acked = 0
        self._cancelled = False
        self._progress = asyncio.Event()
        self._control: Subscription | None = None
        self._done = False

    async def open(self) -> BlobWriter:
        """Subscribe the control inbox (with flow control); call before handing out ``ref``."""
        if self._flow:
            self.ref.control = self._nc.new_inbox()
            self._control = await self._nc.subscribe(self.ref.control, cb=self._on_control)
        return self

    async def _on_control(self, msg: Msg) -> None:
        try:
            data = json.loads(msg.data)
        except ValueError:
            return
        if data.get("cancel"):
            self._cancelled = True
        acked = data.get("acked")
        if isinstance(acked, int) and acked > self._acked:
            self._acked = acked
        self._progress.set()

    async def _await_credit(self) -> None:
        deadline = time.monotonic() + self._stall
        while True:
            if self._cancelled:
                raise BlobCancelled("the reader cancelled the transfer")
            if not self._flow or self._sent - self._acked < self._window:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BlobError(f"the reader took nothing for {self._stall:.0f} s")
            self._progress.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._progress.wait(), remaining)

    async def _publish(self, payload: bytes) -> None:
        await self._await_credit()
        self._sha.update(payload)
        self._inflight.append(await self._js.publish_async(self._subject, payload))
        self._sent += 1
        self.size += len(payload)
        while len(self._inflight) >= MAX_INFLIGHT:
            self._seqs.append((await self._inflight.popleft()).seq)
        await self._trim()

    async def _trim(self) -> None:
        """Purge the chunks the reader has acknowledged (flow control only).

        Without this a download would sit whole in NATS storage until its end; with it the
        store holds at most the writer's lead (``window``) of any transfer, however large.
        The reader's consumer has delivered those chunks already, so it does not notice.
        """
        if not self._flow:
            return
        n = min(self._acked, self._purged + len(self._seqs)) - self._purged
        if n < ACK_EVERY:
            return
        last = 0
        for _ in range(n):
            last = self._seqs.popleft()
        self._purged += n
        with contextlib.suppress(Exception):
            await self._js.purge_stream(STREAM, subject=self._subject, seq=last + 1)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes; full chunks are published as soon as they exist."""
        if self._cancelled:
            raise BlobCancelled("the reader cancelled the transfer")
        if not self._buf and len(data) == self._chunk:
            await self._publish(bytes(data))
            return
        self._buf += data
        while len(self._buf) >= self._chunk:
            payload = bytes(self._buf[: self._chunk])
            del self._buf[: self._chunk]
            await self._publish(payload)

    async def close(self) -> int:
        """Publish what is buffered and the meta message; return the object's size."""
        if self._buf:
            await self._publish(bytes(self._buf))
            self._buf.clear()
        while self._inflight:
            self._seqs.append((await self._inflight.popleft()).seq)
        info = {
            "name": self.ref.name,
            "bucket": subjects.FILES_BUCKET,
            "nuid": self.ref.nuid,
            "size": self.size,
            "chunks": self._sent,
            "mtime": datetime.now(UTC).isoformat(),
            "digest": "SHA-256=" + base64.urlsafe_b64encode(self._sha.digest()).decode(),
            "options": {"max_chunk_size": self._chunk},
        }
        await self._js.publish(
            meta_subject(self.ref.name), json.dumps(info).encode(), headers={"Nats-Rollup": "sub"}
        )
        self._done = True
        try:
            if self._flow:
                await self._await_reader()
        finally:
            await self._stop_control()
        return self.size

    async def _await_reader(self) -> None:
        """Wait until the reader has taken the whole object; delete it if it never does.

        A small object is complete before its reader takes anything. When that reader never
        comes (its HTTP client left before the body started), nobody else would delete it:
        it would hold up to ``window`` chunks of storage until the bucket's TTL.
        """
        while self._acked < self._sent and not self._cancelled:
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), self._stall)
            except TimeoutError:
                await delete_object(self._js, self.ref)
                return

    async def abort(self, reason: str, *, notify: bool = True) -> None:
        """Give up: drop the chunks and leave a deleted meta saying why, for the reader.

        Without ``notify`` (nobody follows this object yet) or when the reader cancelled,
        only the chunks are dropped: a meta nobody reads would sit until the bucket's TTL.
        """
        if self._done:
            return
        self._done = True
        for fut in self._inflight:
            fut.cancel()
        self._inflight.clear()
        with contextlib.suppress(Exception):
            await self._js.purge_stream(STREAM, subject=self._subject)
        if self._cancelled or not notify:
            await self._stop_control()
            return
        info = {
            "name": self.ref.name,
            "bucket": subjects.FILES_BUCKET,
            "nuid": self.ref.nuid,
            "size": 0,
            "chunks": 0,
            "deleted": True,
            "description": reason[:1000],
        }
        with contextlib.suppress(Exception):
            await self._js.publish(
                meta_subject(self.ref.name),
                json.dumps(info).encode(),
                headers={"Nats-Rollup": "sub"},
            )
        await self._stop_control()

    async def _stop_control(self) -> None:
        if self._control is not None:
            with contextlib.suppress(Exception):
                await self._control.unsubscribe()
            self._control = None


class BlobReader:
    """Follow one object from its first chunk to its meta message; see the module docstring."""

    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        ref: BlobRef,
        *,
        idle_timeout: float = STALL_TIMEOUT,
        batch: int = PULL_BATCH,
        verify_digest: bool = False,
    ) -> None:
        self._nc, self._js = nc, js
        self.ref = ref.check()
        self._idle = idle_timeout
        self._batch = batch
        self._verify = verify_digest
        self._csubj = chunk_subject(ref.nuid)
        self._consumer = f"agc-blob-{uuid.uuid4().hex}"
        self._sub: Subscription | None = None
        self._inbox = ""
        self._outstanding = 0
        self.size = 0
        self.chunks = 0
        self.finished = False

    async def open(self) -> BlobReader:
        """Create the ephemeral consumer (nothing is missed: it starts at the stream's start)."""
        await self._js.add_consumer(
            STREAM,
            config=ConsumerConfig(
                name=self._consumer,
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.NONE,
                filter_subjects=[self._csubj, meta_subject(self.ref.name)],
                inactive_threshold=60.0,
                mem_storage=True,
                num_replicas=1,
            ),
        )
        self._inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(self._inbox)
        return self

    async def _pull(self) -> None:
        request = {"batch": self._batch, "expires": int(PULL_EXPIRES * 1e9)}
        await self._nc.publish(
            subjects.consumer_next(STREAM, self._consumer),
            json.dumps(request).encode(),
            reply=self._inbox,
        )
        self._outstanding = self._batch

    async def _ack(self) -> None:
        if self.ref.control:
            with contextlib.suppress(Exception):
                await self._nc.publish(self.ref.control, b'{"acked":%d}' % self.chunks)

    async def chunks_iter(self) -> AsyncGenerator[bytes, None]:
        """Yield the object's chunks as they are written; return after the last one."""
        assert self._sub is not None, "open() first"
        sha = hashlib.sha256() if self._verify else None
        last = time.monotonic()
        await self._pull()
        while True:
            try:
                msg = await self._sub.next_msg(timeout=PULL_EXPIRES + 5.0)
            except (TimeoutError, NatsTimeout):
                msg = None
            if msg is None or (msg.headers and msg.headers.get("Status")):
                status = msg.headers.get("Status") if msg and msg.headers else None
                if status == "100":
                    continue  # heartbeat
                if status == "409" and msg is not None and msg.headers:
                    description = msg.headers.get("Description", "")
                    if "deleted" in description.lower():
                        raise BlobError(f"the transfer's consumer vanished: {description}")
                if time.monotonic() - last > self._idle:
                    raise BlobError(f"no data for {self._idle:.0f} s")
                # The pull expired (408) or was refused: ask again.
                await self._pull()
                continue
            self._outstanding -= 1
            if msg.subject == self._csubj:
                last = time.monotonic()
                self.chunks += 1
                self.size += len(msg.data)
                if sha is not None:
                    sha.update(msg.data)
                if self.chunks % ACK_EVERY == 0:
                    await self._ack()
                if self._outstanding <= 0:
                    await self._pull()
                yield msg.data
                continue
            info = json.loads(msg.data)
            if info.get("deleted"):
                raise BlobError(info.get("description") or "the writer gave up")
            if info.get("chunks") != self.chunks or info.get("size") != self.size:
                raise BlobError(
                    f"transfer incomplete: got {self.chunks} chunks / {self.size} bytes, "
                    f"expected {info.get('chunks')} / {info.get('size')}"
                )
            if sha is not None:
                want = "SHA-256=" + base64.urlsafe_b64encode(sha.digest()).decode()
                if info.get("digest") != want:
                    raise BlobError("transfer corrupted: digest mismatch")
            self.finished = True
            await self._ack()
            return

    async def close(self, *, delete: bool = True) -> None:
        """Stop following; tell an unfinished writer to give up; optionally delete the object."""
        if not self.finished and self.ref.control:
            with contextlib.suppress(Exception):
                await self._nc.publish(self.ref.control, b'{"cancel":true}')
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        with contextlib.suppress(Exception):
            await self._js.delete_consumer(STREAM, self._consumer)
        if delete:
            await delete_object(self._js, self.ref)
