"""Blob streaming through the AGC_FILES object store on a real nats-server (broker.blobs).

The chunk, meta and pull subjects are spelled in ``broker.subjects``; these tests would fail if
they drifted from JetStream's object-store layout (the reader would never see the chunks).
"""

from __future__ import annotations

import asyncio
import os

from nats.aio.client import Client as NATS

from broker import subjects
from broker.blobs import BlobReader, BlobWriter, delete_object, object_name
from broker.streams import ensure_streams


async def test_a_blob_streams_from_writer_to_reader_whole(nc: NATS) -> None:
    js = nc.jetstream()
    await ensure_streams(js)
    data = os.urandom(3 * 1024 * 1024 + 123)
    writer = await BlobWriter(
        nc, js, object_name("conv-0123456789abcdef", "upload"), flow_control=True, size=len(data)
    ).open()
    reader = await BlobReader(nc, js, writer.ref, idle_timeout=10, verify_digest=True).open()

    async def write() -> None:
        for i in range(0, len(data), 100_000):
            await writer.write(data[i : i + 100_000])
        await writer.close()

    async def read() -> bytes:
        return b"".join([c async for c in reader.chunks_iter()])

    _, got = await asyncio.gather(write(), read())
    assert got == data and reader.finished
    await reader.close()
    # Nothing of the object is left in the bucket's stream after its reader is done.
    info = await js.stream_info(subjects.FILES_STREAM)
    assert info.state.messages == 0


async def test_delete_object_purges_its_chunks_and_meta(nc: NATS) -> None:
    js = nc.jetstream()
    await ensure_streams(js)
    writer = await BlobWriter(
        nc, js, object_name("conv-0123456789abcdef", "x"), flow_control=False
    ).open()
    await writer.write(b"a" * 1000)
    await writer.close()
    assert (await js.stream_info(subjects.FILES_STREAM)).state.messages > 0
    await delete_object(js, writer.ref)
    assert (await js.stream_info(subjects.FILES_STREAM)).state.messages == 0
