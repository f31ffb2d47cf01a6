"""Turn an ``init`` command (agent config + secrets) into ``ClaudeAgentOptions``.

The config arrives as ``AgentConfig.to_wire()`` JSON and is decoded into the same pydantic
model the API validated it with (:mod:`configs.model`, in the agent image), so every field is
read typed, in one place. Every field the platform defines is passed on; a malformed config
raises :class:`~runner.errors.ConfigError` naming each bad field.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from claude_agent_sdk import AgentDefinition, ClaudeAgentOptions
from claude_agent_sdk.types import (
    CanUseTool,
    HookContext,
    HookEvent,
    HookInput,
    HookJSONOutput,
    HookMatcher,
    McpHttpServerConfig,
    McpServerConfig,
    McpSSEServerConfig,
    McpStdioServerConfig,
    SystemPromptPreset,
)
from pydantic import ValidationError

from broker.runner_wire import Init
from configs.model import (
    AgentConfig,
    Permissions,
    SseMcpServer,
    StdioMcpServer,
    field_errors,
)
from configs.model import SystemPromptPreset as ConfigPromptPreset
from runner.errors import ConfigError
from runner.settings import RunnerSettings

# What the CLI calls the MCP resource tools (its init message lists these names); the
# config model may add the shorter names too, which is harmless.
_MCP_RESOURCE_TOOLS = ("ListMcpResourcesTool", "ReadMcpResourceTool")
_UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
_PATH_RULE_AS_EDIT = frozenset({"Write", "NotebookEdit"})


def offline_env(
    init: Init, settings: RunnerSettings, config: AgentConfig | None = None
) -> dict[str, str]:
    """Return the CLI's environment: safe defaults, then config ``env``, then ``init.env``.

    The defaults make the CLI quiet and self-contained: no non-essential traffic, every
    directory it writes under ``$HOME`` (a per-session volume) or a per-session scratch dir,
    TodoWrite on, and sub-agents run in the foreground so a turn includes their work (the
    CLI otherwise backgrounds them and reports them after the turn has ended).
    """
    scratch = settings.tmp_root / f"agc-{_UNSAFE_PATH_CHARS.sub('_', init.session_id) or 'x'}"
    env: dict[str, str] = {
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CONFIG_DIR": str(settings.home / ".claude"),
        "CLAUDE_CODE_TMPDIR": str(scratch / "claude"),
        "XDG_CACHE_HOME": str(settings.home / ".cache"),
        "XDG_RUNTIME_DIR": str(scratch / "run"),
        "CLAUDE_CODE_ENABLE_TASKS": "0",
        "CLAUDE_CODE_ENABLE_TODO_TOOLS": "1",
        "CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "1",
    }
    env.update((config if config is not None else agent_config(init.config)).env)
    env.update(_str_map(init.env, "init.env"))
    if init.api_key:
        env["ANTHROPIC_API_KEY"] = init.api_key
    return env


def prepare_dirs(env: Mapping[str, str]) -> None:
    """Create the directories the CLI is pointed at (XDG_RUNTIME_DIR must be private)."""
    for key in ("CLAUDE_CONFIG_DIR", "CLAUDE_CODE_TMPDIR", "XDG_CACHE_HOME"):
        if env.get(key):
            Path(env[key]).mkdir(parents=True, exist_ok=True)
    if env.get("XDG_RUNTIME_DIR"):
        run = Path(env["XDG_RUNTIME_DIR"])
        run.mkdir(parents=True, exist_ok=True)
        os.chmod(run, 0o700)


def agent_config(data: Mapping[str, Any]) -> AgentConfig:
    """Decode the wire config (``AgentConfig.to_wire``) into the typed model.

    Raises :class:`ConfigError` naming every bad field (``permission_mode: ...``), with the
    same field paths and messages the API's 422 gives for the same config.
    """
    if not isinstance(data, Mapping):
        raise ConfigError("config must be an object")
    try:
        return AgentConfig.from_wire(data)
    except ValidationError as exc:
        problems = [f"{e['field'] or 'config'}: {e['message']}" for e in field_errors(exc)]
        raise ConfigError("; ".join(problems)) from exc


def build_options(
    init: Init,
    settings: RunnerSettings,
    *,
    resume: str | None,
    stderr: Callable[[str], None],
    can_use_tool: CanUseTool | None = None,
    config: AgentConfig | None = None,
) -> ClaudeAgentOptions:
    """Return the SDK options for this session's config; raise ConfigError when malformed.

    ``config`` is ``init.config`` already decoded (:func:`agent_config`); given, it is not
    decoded again. ``can_use_tool`` (the approval gate) is installed only when the config's
    permissions can ask a person; otherwise the CLI refuses what nothing allows, as a headless
    agent always did.
    """
    cfg = config if config is not None else agent_config(init.config)
    mcp_servers = _mcp_servers(cfg, init.mcp_env)
    allowed_tools = _allowed_tools(cfg.allowed_tools, mcp_servers)
    agents = _agents(cfg)
    rules, asks = permission_rules(cfg.permissions)
    return ClaudeAgentOptions(
        system_prompt=_system_prompt(cfg.system_prompt),
        allowed_tools=allowed_tools,
        permission_mode=cfg.permission_mode,
        hooks=sub_agent_hooks(agents, allowed_tools),
        mcp_servers=mcp_servers,
        agents=agents,
        max_turns=cfg.max_turns,
        model=cfg.model or None,
        # Default [] so host/user settings files never change an agent's behaviour.
        setting_sources=list(cfg.setting_sources or []),
        env=offline_env(init, settings, cfg),
        cwd=str(settings.workspace),
        include_partial_messages=True,
        # Sub-agent text and thinking are content blocks too: nothing is dropped.
        forward_subagent_text=True,
        resume=resume,
        stderr=stderr,
        # Claude Code matches the rules itself: passed as its settings (deny > ask > allow).
        settings=json.dumps({"permissions": rules}) if rules else None,
        can_use_tool=can_use_tool if asks else None,
    )


def permission_rules(permissions: Permissions) -> tuple[dict[str, list[str]], bool]:
    """The config's ``permissions`` as Claude Code settings rules, and whether a person is asked.

    ``Write(path)`` and ``NotebookEdit(path)`` become ``Edit(path)``: CLI 2.1.327 matches file
    paths only in Read and Edit rules, and its Edit rules cover every file-writing tool.
    """
    rules: dict[str, list[str]] = {}
    for kind, listed in (
        ("allow", permissions.allow),
        ("ask", permissions.ask),
        ("deny", permissions.deny),
    ):
        if listed:
            rules[kind] = list(dict.fromkeys(_cli_rule(r) for r in listed))
    return rules, bool(rules.get("ask")) or permissions.otherwise == "ask"


def _cli_rule(rule: str) -> str:
    name, paren, rest = rule.partition("(")
    if paren and name in _PATH_RULE_AS_EDIT:
        return f"Edit({rest}"
    return rule


def sub_agent_hooks(
    agents: Mapping[str, AgentDefinition] | None, allowed_tools: list[str]
) -> dict[HookEvent, list[HookMatcher]] | None:
    """Let each sub-agent use the tools its definition lists, without opening them to the lead.

    ``allowed_tools`` is the lead agent's list (e.g. an orchestrator with only Task and Read);
    a sub-agent's Bash would otherwise need a permission prompt that nobody can answer, and
    be refused. A PreToolUse hook knows which sub-agent type is calling (``agent_type``), so it
    approves exactly the tools that sub-agent's definition names, and nothing for the lead.
    """
    tools_by_agent = {name: set(a.tools or []) for name, a in (agents or {}).items()}
    if not any(tools - set(allowed_tools) for tools in tools_by_agent.values()):
        return None

    async def approve(
        data: HookInput, _tool_use_id: str | None, _context: HookContext
    ) -> HookJSONOutput:
        if data["hook_event_name"] != "PreToolUse" or not data.get("agent_id"):
            return {}
        if data["tool_name"] not in tools_by_agent.get(data.get("agent_type") or "", set()):
            return {}
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "allow",
                "permissionDecisionReason": "listed in the sub-agent's tools",
            }
        }

    return {"PreToolUse": [HookMatcher(matcher=None, hooks=[approve])]}


def _str_map(value: Mapping[str, str] | None, name: str) -> dict[str, str]:
    # init.env and mcp_env come from the worker, not through the config model: checked here.
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be an object of strings")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str | int | float | bool):
            raise ConfigError(f"{name}[{key!r}] must be a string")
        out[key] = str(item)
    return out


def _system_prompt(value: str | ConfigPromptPreset) -> str | SystemPromptPreset:
    if isinstance(value, str):
        return value
    preset = SystemPromptPreset(type="preset", preset=value.preset)
    if value.append:
        preset["append"] = value.append
    return preset


def _mcp_servers(
    cfg: AgentConfig, mcp_env: Mapping[str, Mapping[str, str]]
) -> dict[str, McpServerConfig]:
    out: dict[str, McpServerConfig] = {}
    for name, spec in cfg.mcp_servers.items():
        if isinstance(spec, StdioMcpServer):
            # Launch-time credentials win over the preset's placeholders.
            env = {**spec.env, **_str_map(mcp_env.get(name), f"mcp_env[{name!r}]")}
            out[name] = McpStdioServerConfig(
                type="stdio", command=spec.command, args=list(spec.args), env=env
            )
        elif isinstance(spec, SseMcpServer):
            out[name] = McpSSEServerConfig(type="sse", url=spec.url, headers=dict(spec.headers))
        else:
            out[name] = McpHttpServerConfig(type="http", url=spec.url, headers=dict(spec.headers))
    return out


def _allowed_tools(tools: list[str], mcp_servers: Mapping[str, McpServerConfig]) -> list[str]:
    tools = list(tools)
    implied: list[str] = []
    if mcp_servers:
        implied.extend(_MCP_RESOURCE_TOOLS)
        for name in mcp_servers:
            implied.append(f"mcp__{name}__*")
    for tool in implied:
        if tool not in tools:
            tools.append(tool)
    return tools


def _agents(cfg: AgentConfig) -> dict[str, AgentDefinition] | None:
    out = {
        name: AgentDefinition(
            description=spec.description,
            prompt=spec.prompt,
            tools=None if spec.tools is None else list(spec.tools),
            model=spec.model,
        )
        for name, spec in cfg.agents.items()
    }
    return out or None
