"""Request bodies of the agent routes (msgspec Structs: Litestar validates them at the edge)."""

from __future__ import annotations

from typing import Any

import msgspec


class LaunchRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    api_key: str
    config_id: str | None = None
    config: dict[str, Any] | None = None
    mcp_env: dict[str, dict[str, str]] | None = None


class ChatRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    message: str
