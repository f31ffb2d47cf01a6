"""Routes under ``/api/agents``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from api.agents import history, service
from api.agents.auth import authorize, bearer_key
from api.agents.hub import FeedClosed, Subscription
from api.agents.schemas import ChatRequest, LaunchRequest
from api.agents.sse import KEEPALIVE, EventStream, error_frame, frame
from api.agents.streams import last_seq
from api.errors import BadRequest, Unavailable
from api.services import ServicesDep


async def _turn_frames(sub: Subscription, turn_id: str) -> AsyncIterator[bytes]:
    """One turn's events as SSE frames; a stream cut short ends with an ``error`` event."""
    try:
        async for ev in service.turn_events(sub, turn_id):
            yield KEEPALIVE if ev is None else frame(ev)
    except FeedClosed as exc:
        yield error_frame(sub.session_id, exc.code, str(exc))
    finally:
        await sub.close()


async def _session_frames(sub: Subscription, *, end_seq: int | None) -> AsyncIterator[bytes]:
    """A session's events as SSE frames, batched per write, until ``session.stopped``.

    ``end_seq``: the newest event of a session that has already ended (the stream stops
    there), None while it lives.
    """
    try:
        async for batch in sub.batches():
            if not batch:
                if end_seq is not None:
                    return  # an ended session whose newest events are gone (aged out)
                yield KEEPALIVE
                continue
            out: list[bytes] = []
            last = False
            for ev in batch:
                out.append(frame(ev))
                if ev.type == "session.stopped" or (end_seq is not None and ev.seq >= end_seq):
                    last = True
                    break
            yield b"".join(out)
            if last:
                return
    except FeedClosed as exc:
        yield error_frame(sub.session_id, exc.code, str(exc))
    finally:
        await sub.close()


def _wants_sse(request: Request[Any, Any, Any]) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


def _last_event_id(request: Request[Any, Any, Any]) -> int:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id") or ""
    if not raw:
        return 0
    if not raw.isdigit():
        raise BadRequest("Last-Event-ID must be the `id` of an event received before")
    return int(raw)


class AgentsController(Controller):
    path = "/api/agents"
    tags = ["agents"]

    @post("/launch", status_code=HTTP_200_OK, summary="Launch an agent session")
    async def launch(self, data: JSONBody[LaunchRequest], services: ServicesDep) -> dict[str, Any]:
        """Start a session from a config id or an inline config; returns once it is running."""
        return await service.launch(services, data)

    @post("/{session_id:str}/chat", status_code=HTTP_200_OK, summary="Chat with a session")
    async def chat(
        self,
        request: Request[Any, Any, Any],
        session_id: FromPath[str],
        data: JSONBody[ChatRequest],
        services: ServicesDep,
    ) -> Any:
        """Run one turn: SSE of its events with `Accept: text/event-stream`, else a JSON summary.

        Send `Idempotency-Key: <your id>` to make a retry of the same chat safe: within two
        minutes the same key is the same turn, never a second one.
        """
        record = await authorize(request, services, session_id)
        service.ensure_live(record)
        message = service.check_message(data.message)
        sse = _wants_sse(request)
        # Before the chat is sent: a stream over the key's limit is refused, not the turn.
        lease = await services.streams.acquire(record.key_hash) if sse else None
        try:
            feed, turn_id = await service.send_chat(
                services, record, message, request.headers.get("idempotency-key")
            )
        except BaseException:
            if lease is not None:
                await services.streams.release(lease)
            raise
        headers = {"X-Turn-Id": turn_id}
        if lease is not None:
            frames = services.streams.hold(lease, _turn_frames(feed, turn_id))
            return EventStream(frames, headers=headers)
        try:
            summary = await service.collect_turn(feed, turn_id, services.settings.chat_timeout)
        except FeedClosed as exc:
            raise Unavailable(f"the turn's events stopped: {exc}", turn_id=turn_id) from exc
        return Response(summary, headers=headers)

    @get("/{session_id:str}/events", summary="The session's event stream (SSE, resumable)")
    async def events(
        self, request: Request[Any, Any, Any], session_id: FromPath[str], services: ServicesDep
    ) -> EventStream:
        """Every event from the start, or after `Last-Event-ID`; live until the session stops.

        Each event's `id` is its stream sequence. 429 when the key has AGC_MAX_STREAMS_PER_KEY
        streams open (across API processes), 503 with `Retry-After` when this API process
        is at its limit of streams; a client too slow to keep up gets an `error` event
        (`slow_consumer`) and the stream ends: reconnect with `Last-Event-ID`.
        """
        record = await authorize(request, services, session_id)
        after = _last_event_id(request)
        end_seq: int | None = None
        if record.status in ("stopped", "failed"):
            end_seq = await last_seq(services.js, session_id)
            if after >= end_seq:
                return EventStream([])  # nothing more will ever come
        lease = await services.streams.acquire(record.key_hash)  # 429 over the key's cap
        try:
            sub = await service.follow(services, session_id, after=after)
        except BaseException:
            await services.streams.release(lease)
            raise
        return EventStream(services.streams.hold(lease, _session_frames(sub, end_seq=end_seq)))

    @get("/{session_id:str}/history", summary="The conversation so far (JSON or Markdown)")
    async def history(
        self,
        request: Request[Any, Any, Any],
        session_id: FromPath[str],
        services: ServicesDep,
        format: FromQuery[str] = "json",
    ) -> Any:
        """Turns rebuilt from the event stream; `?format=markdown` exports them readably."""
        await authorize(request, services, session_id)
        if format not in ("json", "markdown"):
            raise BadRequest("`format` must be `json` or `markdown`")
        built = history.build_history(
            session_id, await history.read_all_events(services.js, session_id)
        )
        if format == "markdown":
            return Response(
                history.to_markdown(built),
                media_type="text/markdown; charset=utf-8",
                headers={"Content-Disposition": f'inline; filename="{session_id}.md"'},
            )
        return built

    @post("/{session_id:str}/interrupt", status_code=HTTP_202_ACCEPTED, summary="Interrupt")
    async def interrupt(
        self, request: Request[Any, Any, Any], session_id: FromPath[str], services: ServicesDep
    ) -> dict[str, Any]:
        """Stop the running turn; the session stays."""
        record = await authorize(request, services, session_id)
        service.ensure_live(record)
        await service.interrupt(services, record)
        return {"session_id": session_id, "interrupted": True}

    @get("/sessions", summary="The caller's sessions")
    async def list_sessions(
        self, request: Request[Any, Any, Any], services: ServicesDep
    ) -> dict[str, Any]:
        """Sessions launched with the caller's key, newest first."""
        key = bearer_key(request)
        records = await services.store.list_records(key_hash=services.sealer.key_hash(key))
        sessions = [r.public() for r in records]
        return {"sessions": sessions, "total": len(sessions)}

    @get("/sessions/{session_id:str}", summary="One session")
    async def get_session(
        self, request: Request[Any, Any, Any], session_id: FromPath[str], services: ServicesDep
    ) -> dict[str, Any]:
        """Status, times, config, owner, usage so far and live resource use."""
        record = await authorize(request, services, session_id)
        out = record.public()
        out["resources"] = await service.resources(services, record)
        return out

    @delete("/sessions/{session_id:str}", status_code=HTTP_200_OK, summary="Stop a session")
    async def delete_session(
        self, request: Request[Any, Any, Any], session_id: FromPath[str], services: ServicesDep
    ) -> dict[str, Any]:
        """Stop the session and remove its container and workspace."""
        record = await authorize(request, services, session_id)
        return await service.stop(services, record)
