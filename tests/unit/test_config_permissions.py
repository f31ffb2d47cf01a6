"""The `permissions` block of an agent config: Claude Code rules, validated with the rule named."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from broker.runner_wire import Init
from configs.model import AgentConfig, Permissions, field_errors
from runner.errors import ConfigError
from runner.options import build_options, permission_rules
from runner.settings import RunnerSettings


def config(**permissions: Any) -> AgentConfig:
    return AgentConfig(id="p", name="p", permissions=permissions)


def errors(**permissions: Any) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as exc:
        config(**permissions)
    return [{"field": e["field"], "message": e["message"]} for e in field_errors(exc.value)]


def test_rules_in_claude_code_syntax_are_kept_as_written() -> None:
    c = config(
        allow=["Bash(git status:*)", "Read"],
        ask=["Bash(git push:*)", "Write(//workspace/secrets/**)", "Bash(git push:*)"],
        deny=["Bash(rm -rf:*)", "Edit(secrets/**)"],
    )
    assert c.permissions.ask == ["Bash(git push:*)", "Write(//workspace/secrets/**)"]
    assert c.to_wire()["permissions"]["otherwise"] == "deny"
    assert c.summary()["asks_approval"] is True
    assert AgentConfig(id="q", name="q").summary()["asks_approval"] is False
    assert config(otherwise="ask").permissions.asks is True


@pytest.mark.parametrize(
    ("permissions", "field", "words"),
    [
        (
            {"ask": ["Bash(ls:*)", "Bsh(git push:*)"]},
            "permissions.ask.1",
            ["'Bsh(git push:*)'", "'Bash'"],
        ),
        ({"deny": ["Bash()"]}, "permissions.deny.0", ["'Bash()'", "permission rule"]),
        (
            {"ask": ["mcp__gh__create_issue"]},
            "permissions.ask.0",
            ["'mcp__gh__create_issue'", "not declared"],
        ),
        (
            {"deny": ["Write(/workspace/secrets/**)"]},
            "permissions.deny.0",
            ["'Write(//workspace/secrets/**)'"],
        ),
        ({"allow": ["Bash"], "deny": ["Bash"]}, "permissions", ["'Bash'", "deny", "allow"]),
        ({"otherwise": "maybe"}, "permissions.otherwise", ["'deny' or 'ask'"]),
        ({"asks": []}, "permissions.asks", ["unknown field 'asks'", "'ask'"]),
    ],
)
def test_errors_name_the_rule(permissions: dict[str, Any], field: str, words: list[str]) -> None:
    found = errors(**permissions)
    assert [e["field"] for e in found] == [field], found
    for word in words:
        assert word in found[0]["message"], found


def test_the_runner_passes_rules_to_claude_code_as_its_settings() -> None:
    rules, asks = permission_rules(
        Permissions(ask=["Write(//w/secrets/**)", "Bash(git push:*)"], deny=["NotebookEdit(x/**)"])
    )
    # Claude Code matches file paths only in Read/Edit rules; Edit covers every writing tool
    assert rules == {"ask": ["Edit(//w/secrets/**)", "Bash(git push:*)"], "deny": ["Edit(x/**)"]}
    assert asks is True
    assert permission_rules(Permissions(deny=["Bash"])) == ({"deny": ["Bash"]}, False)
    assert permission_rules(Permissions(otherwise="ask")) == ({}, True)
    # a bad block reaching the runner is refused there too, naming the field
    bad = Init(session_id="s", config={"id": "p", "name": "p", "permissions": {"otherwise": "x"}})
    with pytest.raises(ConfigError, match=r"permissions\.otherwise"):
        build_options(bad, RunnerSettings(), resume=None, stderr=print)

    async def gate(*_: Any) -> Any:
        raise AssertionError

    def options(perms: dict[str, Any] | None) -> Any:
        cfg = config(**(perms or {})).to_wire() if perms is not None else {"id": "p", "name": "p"}
        init = Init(session_id="s", config=cfg, api_key="k")
        return build_options(init, RunnerSettings(), resume=None, stderr=print, can_use_tool=gate)

    asking = options({"ask": ["Bash(git push:*)"]})
    assert json.loads(asking.settings) == {"permissions": {"ask": ["Bash(git push:*)"]}}
    assert asking.can_use_tool is gate
    # without anything to ask, nobody is asked: the CLI refuses what nothing allows
    deny_only = options({"deny": ["Bash(rm:*)"]})
    assert deny_only.can_use_tool is None and "rm:*" in deny_only.settings
    plain = options(None)
    assert plain.settings is None and plain.can_use_tool is None
