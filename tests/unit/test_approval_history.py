"""Approvals in the rebuilt history and its Markdown export: who decided what."""

from __future__ import annotations

from typing import Any

from api.agents.history import build_history, to_markdown

SID = "conv-0123456789abcdef"


def ev(type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "session_id": SID, "turn_id": "t1", "ts": 1.0, **fields}


def test_requests_and_resolutions_fold_into_their_turn() -> None:
    events = [
        ev("user.message", text="push it"),
        ev("approval.requested", request_id="apr-1", tool="Bash", input={"command": "git push"}),
        ev(
            "approval.resolved",
            request_id="apr-1",
            decision="deny",
            message="not on Fridays",
            by="key:0a1b2c3d4e5f",
            by_name="alice",
            cause="answer",
        ),
        ev("approval.requested", request_id="apr-2", tool="Bash", input={"command": "ls"}),
        ev(
            "approval.resolved",
            request_id="apr-2",
            decision="allow",
            scope="session",
            updated_input={"command": "ls -la"},
            by="key:0a1b2c3d4e5f",
            cause="answer",
        ),
        ev("approval.requested", request_id="apr-3", tool="Write", input={}),
        ev("approval.resolved", request_id="apr-3", decision="deny", cause="timeout"),
        ev("turn.completed"),
    ]
    turn = build_history(SID, events)["turns"][0]
    assert [(a["request_id"], a["decision"], a["decided_by_name"]) for a in turn["approvals"]] == [
        ("apr-1", "deny", "alice"),
        ("apr-2", "allow", ""),
        ("apr-3", "deny", ""),
    ]
    assert turn["approvals"][0]["input"] == {"command": "git push"}
    assert turn["approvals"][1]["updated_input"] == {"command": "ls -la"}
    md = to_markdown(build_history(SID, events))
    assert "`Bash` — denied by alice (key:0a1b2c3d4e5f): not on Fridays" in md
    assert "allowed by key:0a1b2c3d4e5f for the rest of the session, with edited input" in md
    assert "`Write` — denied: nobody answered in time" in md
