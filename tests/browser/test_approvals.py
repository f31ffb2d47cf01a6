"""Approving tool calls from the dashboard, in Chromium, against the real stack.

A session whose config asks before ``echo`` runs a chat of five calls; the person answers each
card differently (Allow, edit the input then allow, Deny with a comment, Allow for this
session) and the fifth call runs without asking. The page title counts the waiting session and
the sessions page marks it.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser import test_dashboard as dash
from tests.browser.test_dashboard import enter_key, send, shot, wait_turn_done
from tests.modelserver.script import text, tool_use

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.e2e]

# The dashboard tests' fixtures: Chromium, a context and page, the stack's URL and model.
browser, context, page, base_url, api_key, model = (
    dash.browser,
    dash.context,
    dash.page,
    dash.base_url,
    dash.api_key,
    dash.model,
)

CONFIG: dict[str, Any] = {
    "id": "asks-in-the-browser",
    "name": "Asks before echo",
    "allowed_tools": ["Bash", "Read"],
    "permissions": {"ask": ["Bash(echo:*)"]},
}


def bash(command: str) -> Any:
    return tool_use("Bash", {"command": command, "description": "scripted"})


def card(page: Page, n: int) -> Any:
    c = page.get_by_test_id("approval-card").nth(n)
    expect(c).to_have_attribute("data-state", "pending", timeout=90_000)
    return c


def test_a_person_answers_tool_approvals_in_the_dashboard(
    page: Page, base_url: str, api_key: str, model: Any
) -> None:
    enter_key(page, base_url, api_key)
    r = httpx.post(
        f"{base_url}/api/agents/launch", json={"api_key": api_key, "config": CONFIG}, timeout=120
    )
    assert r.status_code == 200, r.text
    sid = r.json()["session_id"]
    name = f"ui-approvals-{sid}"
    marker = model.add_script(
        name,
        [
            [bash("echo one")],
            [bash("echo two")],
            [bash("echo three")],
            [bash("echo four")],
            [bash("echo five")],
            [text("all done")],
        ],
    )
    page.goto(f"{base_url}/chat/{sid}")
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "live")
    send(page, f"go {marker}")

    first = card(page, 0)
    expect(first).to_contain_text("Bash")
    expect(first.get_by_test_id("approval-input")).to_contain_text("echo one")
    # the title counts the waiting session; the sessions page (another tab) marks it
    expect(page).to_have_title(re.compile(r"^\(1\) AgCluster"), timeout=20_000)
    other = page.context.new_page()
    other.goto(f"{base_url}/sessions")
    row = other.locator(f'[data-testid="session-row"][data-session-id="{sid}"]')
    expect(row).to_have_attribute("data-status", "waiting", timeout=20_000)
    expect(row.get_by_test_id("session-row-waiting")).to_be_visible()
    shot(other, "approvals-01-sessions-waiting")
    other.close()
    shot(page, "approvals-02-card")
    first.get_by_test_id("approval-allow").click()
    expect(first).to_have_attribute("data-state", "allowed")
    expect(page.get_by_test_id("grants-panel")).to_have_count(0)  # allowed once: no grant

    second = card(page, 1)
    second.get_by_test_id("approval-edit").click()
    second.get_by_test_id("approval-edit-input").fill(
        '{"command": "echo edited-in-the-browser", "description": "edited"}'
    )
    shot(page, "approvals-03-edit")
    second.get_by_test_id("approval-allow-edited").click()
    expect(second).to_have_attribute("data-state", "allowed")
    expect(second.get_by_test_id("approval-outcome")).to_contain_text("input edited")

    third = card(page, 2)
    third.get_by_test_id("approval-deny").click()
    third.get_by_test_id("approval-comment").fill("Not this one, thanks")
    third.get_by_test_id("approval-deny-confirm").click()
    expect(third).to_have_attribute("data-state", "denied")
    expect(third.get_by_test_id("approval-outcome")).to_contain_text("Not this one, thanks")

    fourth = card(page, 3)
    fourth.get_by_test_id("approval-allow-session").click()
    expect(fourth.get_by_test_id("approval-outcome")).to_contain_text("for the rest of the session")
    # the side panel lists the tool as allowed for the session (only after that answer)
    expect(page.get_by_test_id("grants")).to_contain_text("Bash")

    wait_turn_done(page)
    shot(page, "approvals-04-done")
    # the fifth call ran without asking
    expect(page.get_by_test_id("approval-card")).to_have_count(4)
    expect(page).to_have_title("AgCluster", timeout=20_000)

    history = httpx.get(
        f"{base_url}/api/agents/{sid}/history",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    ).json()
    calls = history["turns"][-1]["tool_calls"]
    assert [c["output"] for c in calls if not c["is_error"]] == [
        "one",
        "edited-in-the-browser",
        "four",
        "five",
    ]
    assert "Not this one, thanks" in model.requests_for(name)[3].all_text
    httpx.delete(
        f"{base_url}/api/agents/sessions/{sid}",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=60,
    )
