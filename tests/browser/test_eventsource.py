"""The browser's own EventSource reads the API's event stream (issue 13, SSE conformance).

Chromium (Debian's, driven by Playwright) opens ``new EventSource('/api/agents/{sid}/events')``
on a page of the API's origin. EventSource refuses a response that is not
``text/event-stream``, dispatches named events only to their listeners, and on a dropped
connection reconnects by itself with ``Last-Event-ID``: the test drops it by restarting the API
while events keep coming and checks every event arrives once, in order, with its stream
sequence as ``lastEventId``.

EventSource cannot send an Authorization header; the page's requests get the session's key added
by Playwright on the way out (the dashboard itself reads SSE with fetch()). No Docker: the
session's events are published as a worker publishes them (tests/support/scripted_session.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from playwright.async_api import Browser, Page, Route, async_playwright

from agcluster.procs import Service
from broker.events import SessionStopped
from broker.streams import ensure_streams
from tests.support.api_server import api_settings, free_port, serve_api
from tests.support.scripted_session import create_session, publish, stored_seqs, turn

pytestmark = [pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
EVENT_TYPES = [
    "session.status",
    "user.message",
    "turn.started",
    "text.delta",
    "message",
    "turn.completed",
    "error",
    "session.stopped",
]

# Runs in the page: follow the session with EventSource, record every named event; close on
# session.stopped (the server ends the stream there; EventSource would otherwise reconnect).
FOLLOW_JS = """([url, types]) => {
  window.__got = []; window.__opens = 0; window.__errors = 0;
  const es = new EventSource(url);
  window.__es = es;
  es.onopen = () => { window.__opens += 1; };
  es.onerror = (e) => { if (!(e instanceof MessageEvent)) window.__errors += 1; };
  for (const t of types) {
    es.addEventListener(t, (e) => {
      window.__got.push({type: e.type, lastEventId: e.lastEventId, data: JSON.parse(e.data)});
      if (t === 'session.stopped') es.close();
    });
  }
}"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} missing: run `scripts/setup.sh browser`")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


async def _until(page: Page, expr: str, timeout: float = 30.0) -> Any:
    """Wait until a JS expression of the page is truthy; return its value.

    Polled with ``evaluate``: ``wait_for_function`` evals a string in the page, which the
    API's Content-Security-Policy (rightly) forbids.
    """
    async with asyncio.timeout(timeout):
        while not (value := await page.evaluate(expr)):
            await asyncio.sleep(0.05)
    return value


async def test_eventsource_follows_and_resumes_across_an_api_restart(
    browser: Browser,
    nats_server: Service,
    redis_server: Service,
    nc: NATS,
    tmp_path: Path,
    secret_key: str,
) -> None:
    js = nc.jetstream()
    await ensure_streams(js)
    settings = api_settings(nats_server.url, redis_server.url, secret_key, tmp_path)
    sess = await create_session(redis_server.url, secret_key)
    sid = sess.session_id
    await publish(js, turn(sid, "turn-1", deltas=5))
    port = free_port()
    page = await browser.new_page()

    async def add_key(route: Route) -> None:
        await route.continue_(
            headers={**route.request.headers, **{"authorization": f"Bearer {sess.api_key}"}}
        )

    await page.route("**/api/agents/**", add_key)
    try:
        async with serve_api(settings, port) as api:
            await page.goto(f"{api.base_url}/health")
            await page.evaluate(FOLLOW_JS, [f"/api/agents/{sid}/events", EVENT_TYPES])
            await _until(page, "window.__got.some(e => e.type === 'turn.completed')")
            await publish(js, turn(sid, "turn-2", deltas=5))
            await _until(
                page,
                "window.__got.some(e => e.data.turn_id === 'turn-2' && e.type === 'turn.completed')",
            )
        # The API is gone: the browser sees the connection drop while the session goes on.
        await publish(js, turn(sid, "turn-3", deltas=5))
        async with serve_api(settings, port):
            # EventSource reconnects by itself, sending Last-Event-ID.
            await _until(page, "window.__opens >= 2")
            await publish(js, [SessionStopped(session_id=sid, reason="deleted")])
            await _until(page, "window.__es.readyState === 2")
        got = await page.evaluate("window.__got")
        errors = await page.evaluate("window.__errors")
    finally:
        await page.close()
    truth = await stored_seqs(js, sid)
    assert [int(e["lastEventId"]) for e in got] == truth  # every event once, in order
    assert [e["type"] for e in got][-1] == "session.stopped"
    assert {e["data"]["turn_id"] for e in got if e["type"] == "turn.completed"} == {
        "turn-1",
        "turn-2",
        "turn-3",
    }
    assert errors >= 1  # the drop was seen (and survived)
    assert all(e["data"]["session_id"] == sid for e in got)
