"""Turn an ``init`` command (agent config + secrets) into ``ClaudeAgentOptions``.

The config arrives as ``AgentConfig.to_wire()`` JSON and is decoded into the same pydantic
model the API validated it with (:mod:`configs.model`, in the agent image), so every field is
read typed, in one place. Every field the platform defines is passed on; a malformed config
raises :class:`~runner.errors.ConfigError` naming each bad field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

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

from broker.runner_wire import Init
from configs.model import AgentConfig, SseMcpServer, StdioMcpServer
from configs.model import SystemPromptPreset as ConfigPromptPreset
from runner.cli_config import (
    agent_config,
    allowed_tools,
    offline_env,
    permission_rules,
    prepare_dirs,
    str_map,
)
from runner.settings import RunnerSettings

# offline_env, permission_rules and prepare_dirs live in runner.cli_config (read before the SDK
# is imported); tests and benchmarks still import them from here.
__all__ = ["build_options", "offline_env", "permission_rules", "prepare_dirs", "sub_agent_hooks"]


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
    tools = allowed_tools(cfg.allowed_tools, mcp_servers)
    agents = _agents(cfg)
    rules, asks = permission_rules(cfg.permissions)
    return ClaudeAgentOptions(
        system_prompt=_system_prompt(cfg.system_prompt),
        allowed_tools=tools,
        permission_mode=cfg.permission_mode,
        hooks=sub_agent_hooks(agents, tools),
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
            env = {**spec.env, **str_map(mcp_env.get(name), f"mcp_env[{name!r}]")}
            out[name] = McpStdioServerConfig(
                type="stdio", command=spec.command, args=list(spec.args), env=env
            )
        elif isinstance(spec, SseMcpServer):
            out[name] = McpSSEServerConfig(type="sse", url=spec.url, headers=dict(spec.headers))
        else:
            out[name] = McpHttpServerConfig(type="http", url=spec.url, headers=dict(spec.headers))
    return out


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
