"""Routes under ``/api/agents``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from api.agents import history, service
from api.agents.auth import authorize, bearer_key
from api.agents.schemas import ChatRequest, LaunchRequest
from api.agents.streams import EventFeed, StreamedEvent, last_seq
from api.errors import BadRequest
from api.services import ServicesDep

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _sse(ev: StreamedEvent | None) -> ServerSentEventMessage:
    if ev is None:
        # No data line: a comment alone is not an event, so clients dispatch nothing.
        return ServerSentEventMessage(comment="keep-alive", data=None)
    return ServerSentEventMessage(data=ev.data.decode(), event=ev.type, id=ev.seq)


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
        feed, turn_id = await service.send_chat(
            services, record, message, request.headers.get("idempotency-key")
        )
        headers = {"X-Turn-Id": turn_id}
        if _wants_sse(request):

            async def stream() -> AsyncIterator[ServerSentEventMessage]:
                try:
                    async for ev in service.turn_events(feed, turn_id):
                        yield _sse(ev)
                finally:
                    await feed.close()

            return ServerSentEvent(stream(), headers={**SSE_HEADERS, **headers})
        summary = await service.collect_turn(feed, turn_id, services.settings.chat_timeout)
        return Response(summary, headers=headers)

    @get("/{session_id:str}/events", summary="The session's event stream (SSE, resumable)")
    async def events(
        self, request: Request[Any, Any, Any], session_id: FromPath[str], services: ServicesDep
    ) -> ServerSentEvent:
        """Every event from the start, or after `Last-Event-ID`; live until the session stops."""
        record = await authorize(request, services, session_id)
        after = _last_event_id(request)
        terminal = record.status in ("stopped", "failed")
        end_seq = await last_seq(services.js, session_id) if terminal else 0
        feed = await EventFeed(
            services.js, session_id, after_seq=after, keepalive=services.settings.sse_keepalive
        ).open()

        async def stream() -> AsyncIterator[ServerSentEventMessage]:
            try:
                if terminal and after >= end_seq:
                    return
                async for ev in feed.events():
                    if ev is None and terminal:
                        return
                    yield _sse(ev)
                    if ev is not None and (
                        ev.type == "session.stopped" or (terminal and ev.seq >= end_seq)
                    ):
                        return
            finally:
                await feed.close()

        return ServerSentEvent(stream(), headers=SSE_HEADERS)

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
