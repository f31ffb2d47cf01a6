"""Rebuild a session's conversation from its event stream (JSON, or Markdown for export)."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from nats.js import JetStreamContext

from api.agents.streams import EventFeed, last_seq
from api.agents.turns import fold_turns


async def read_all_events(js: JetStreamContext, session_id: str) -> list[dict[str, Any]]:
    """Every stored event of a session, oldest first."""
    end = await last_seq(js, session_id)
    if end == 0:
        return []
    out: list[dict[str, Any]] = []
    feed = await EventFeed(js, session_id, after_seq=0, keepalive=5.0).open()
    try:
        async for ev in feed.events():
            if ev is None:
                break  # nothing more arrived: the stream holds less than its last seq said
            out.append(msgspec.json.decode(ev.data))
            if ev.seq >= end:
                break
    finally:
        await feed.close()
    return out


def build_history(session_id: str, events: list[Any]) -> dict[str, Any]:
    """Turns (user message, assistant text, tool calls with results, usage) from events."""
    out_turns: list[dict[str, Any]] = [
        {
            "turn_id": t.turn_id,
            "user": t.user,
            "started_at": t.started_at,
            "completed_at": t.completed.ts if t.completed else None,
            "assistant": t.texts,
            "tool_calls": list(t.tools.values()),
            "errors": [{"code": e.code, "message": e.message} for e in t.errors],
            "approvals": t.approvals,
            "usage": t.usage,
            "cost_usd": t.completed.cost_usd if t.completed else None,
            "duration_ms": t.completed.duration_ms if t.completed else None,
            "interrupted": bool(t.completed and t.completed.interrupted),
            "is_error": bool(t.completed and t.completed.is_error),
        }
        for t in fold_turns(events)
    ]
    total_in = sum(int(t["usage"].get("input_tokens", 0) or 0) for t in out_turns)
    total_out = sum(int(t["usage"].get("output_tokens", 0) or 0) for t in out_turns)
    return {
        "session_id": session_id,
        "turns": out_turns,
        "total_turns": len(out_turns),
        "usage": {"input_tokens": total_in, "output_tokens": total_out},
        "cost_usd": round(sum(float(t["cost_usd"] or 0) for t in out_turns), 6),
    }


def _approval_line(a: dict[str, Any]) -> str:
    name, key = a["decided_by_name"], a["decided_by"] or ""
    who = f"{name} ({key})" if name and key else name or key
    match a["decision"], a["cause"]:
        case None, _:
            outcome = "waiting for an answer"
        case _, "timeout":
            outcome = "denied: nobody answered in time"
        case _, "interrupted" | "stopped" | "cancelled":
            outcome = f"cancelled ({a['cause']})"
        case "allow", _:
            outcome = f"allowed by {who or 'someone'}" + (
                " for the rest of the session" if a["scope"] == "session" else ""
            )
            if a["updated_input"] is not None:
                outcome += ", with edited input"
        case _:
            outcome = f"denied by {who or 'someone'}" + (
                f": {a['message']}" if a["message"] else ""
            )
    return f"> **Approval** `{a['tool']}` — {outcome}"


def _fence(text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}\n{text}\n{fence}"


def to_markdown(history: dict[str, Any]) -> str:
    """A readable export of a session's conversation."""
    lines = [f"# Session {history['session_id']}", ""]
    for n, turn in enumerate(history["turns"], 1):
        lines += [f"## Turn {n}", "", "**User:**", "", turn["user"] or "_(empty)_", ""]
        for approval in turn.get("approvals", []):
            lines += [_approval_line(approval), ""]
        for call in turn["tool_calls"]:
            nested = " (sub-agent)" if call.get("parent_tool_use_id") else ""
            status = "error" if call["is_error"] else "ok"
            lines += [f"**Tool `{call['name']}`**{nested} — {status}", ""]
            lines += [_fence(json.dumps(call["input"], indent=2, ensure_ascii=False)), ""]
            if call["output"]:
                lines += [_fence(str(call["output"])[:4000]), ""]
        if turn["assistant"]:
            lines += ["**Assistant:**", "", "\n\n".join(turn["assistant"]), ""]
        for err in turn["errors"]:
            lines += [f"> **Error** `{err['code']}`: {err['message']}", ""]
        usage = turn["usage"]
        meta = [f"{usage.get('input_tokens', 0)} in / {usage.get('output_tokens', 0)} out tokens"]
        if turn["duration_ms"] is not None:
            meta.append(f"{turn['duration_ms'] / 1000:.1f} s")
        if turn["cost_usd"] is not None:
            meta.append(f"${turn['cost_usd']:.4f}")
        if turn["interrupted"]:
            meta.append("interrupted")
        lines += [f"_{' · '.join(meta)}_", ""]
    return "\n".join(lines)
