"""The agent config schema, the shipped presets and the preset/custom config store."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from configs.errors import (
    ConfigConflict,
    ConfigError,
    ConfigNotFound,
    FieldError,
    InvalidConfig,
    PresetReadOnly,
)
from configs.model import (
    BUILTIN_TOOLS,
    CORE_ENV_VARS,
    AgentConfig,
    StdioMcpServer,
    SystemPromptPreset,
    field_errors,
    parse_size,
    tool_problem,
)
from configs.store import ConfigStore, dump_config, load_config_file, load_presets, parse_config

GIB = 1 << 30

# id -> (allowed tools as written in the preset, cpu_quota, memory, storage)
PRESETS: dict[str, tuple[list[str], int, str, str]] = {
    "code-assistant": (
        ["Bash", "Read", "Write", "Edit", "Grep", "Glob", "Task", "TodoWrite"],
        200_000,
        "4g",
        "10g",
    ),
    "research-agent": (
        ["WebFetch", "WebSearch", "Read", "Write", "Grep", "TodoWrite"],
        100_000,
        "2g",
        "5g",
    ),
    "data-analysis": (
        ["Bash", "Read", "Write", "Edit", "Grep", "Glob", "NotebookEdit", "TodoWrite"],
        200_000,
        "6g",
        "15g",
    ),
    "github-code-review": (
        ["Read", "Write", "Grep", "TodoWrite"],
        100_000,
        "2g",
        "5g",
    ),
    "fullstack-team": (
        ["Task", "Read", "Glob", "Grep", "TodoWrite"],
        300_000,
        "6g",
        "10g",
    ),
}


def minimal(**fields: Any) -> dict[str, Any]:
    return {"id": "my-agent", "name": "My agent", **fields}


def errors_of(data: Any) -> list[FieldError]:
    with pytest.raises(InvalidConfig) as info:
        parse_config(data)
    return info.value.errors


def fields_of(data: Any) -> set[str]:
    return {e["field"] for e in errors_of(data)}


# ------------------------------------------------------------------------------------------
# presets
# ------------------------------------------------------------------------------------------


def test_exactly_the_five_presets_ship() -> None:
    assert set(load_presets()) == set(PRESETS)


@pytest.mark.parametrize("preset_id", sorted(PRESETS))
def test_preset_has_its_tools_and_limits(preset_id: str) -> None:
    tools, cpu, memory, storage = PRESETS[preset_id]
    config = ConfigStore(Path("/nonexistent")).get(preset_id)
    assert config.id == preset_id
    assert config.allowed_tools[: len(tools)] == tools
    limits = config.resource_limits
    assert (limits.cpu_quota, limits.memory_limit, limits.storage_limit) == (cpu, memory, storage)
    assert limits.pids_limit == 256
    assert config.name
    assert config.description
    # every preset survives the trip to the runner unchanged
    assert AgentConfig.from_wire(config.to_wire()) == config


def test_code_assistant_specifics() -> None:
    config = load_presets()["code-assistant"]
    assert config.max_turns == 100
    assert config.permission_mode == "acceptEdits"
    assert isinstance(config.system_prompt, SystemPromptPreset)
    assert config.system_prompt.preset == "claude_code"
    assert config.system_prompt.append


def test_research_agent_asks_for_citations() -> None:
    config = load_presets()["research-agent"]
    assert isinstance(config.system_prompt, str)
    assert "cite" in config.system_prompt.lower()


def test_data_analysis_prompt_names_the_stack_and_plot_files() -> None:
    config = load_presets()["data-analysis"]
    assert isinstance(config.system_prompt, SystemPromptPreset)
    text = config.system_prompt.append or ""
    for lib in ("pandas", "numpy", "scipy", "scikit-learn", "matplotlib"):
        assert lib in text
    assert "savefig" in text


def test_github_code_review_declares_its_server_and_credential() -> None:
    config = load_presets()["github-code-review"]
    assert config.permission_mode == "bypassPermissions"
    server = config.mcp_servers["github"]
    assert isinstance(server, StdioMcpServer)
    # the server installed in the agent image, never `npx` (it would fetch at run time)
    assert server.command == "mcp-server-github"
    assert server.args == []
    assert server.env == {"GITHUB_PERSONAL_ACCESS_TOKEN": ""}
    assert config.allowed_tools == [
        "Read",
        "Write",
        "Grep",
        "TodoWrite",
        "ListMcpResources",
        "ReadMcpResource",
        "mcp__github__*",
    ]
    assert config.declared_mcp_env("github") == {"GITHUB_PERSONAL_ACCESS_TOKEN"}
    summary = config.summary()
    assert summary["mcp_credentials"] == {"github": ["GITHUB_PERSONAL_ACCESS_TOKEN"]}
    assert summary["has_mcp_servers"] is True
    assert summary["mcp_servers"] == ["github"]


def test_fullstack_team_delegates_to_three_sub_agents() -> None:
    config = load_presets()["fullstack-team"]
    assert list(config.agents) == ["frontend", "backend", "devops"]
    for agent in config.agents.values():
        assert agent.description
        assert len(agent.prompt) > 200
        assert agent.tools is not None
        assert {"Read", "Write", "Edit", "Bash"} <= set(agent.tools)
    summary = config.summary()
    assert summary["has_sub_agents"] is True
    assert summary["sub_agents"] == ["frontend", "backend", "devops"]


# ------------------------------------------------------------------------------------------
# valid configs
# ------------------------------------------------------------------------------------------


def test_minimal_config_gets_documented_defaults() -> None:
    config = parse_config(minimal())
    assert config.description == ""
    assert config.version == "1.0.0"
    assert config.system_prompt == SystemPromptPreset(type="preset", preset="claude_code")
    assert config.permission_mode == "acceptEdits"
    assert config.allowed_tools == []
    limits = config.resource_limits
    # The original AgCluster's defaults: 2 CPUs, 4g, 10g.
    assert (limits.cpu_quota, limits.memory_limit, limits.storage_limit) == (200_000, "4g", "10g")
    assert limits.pids_limit == 256
    assert limits.memory_bytes == 4 * GIB
    assert limits.storage_bytes == 10 * GIB
    assert limits.cpus == 2.0
    assert config.max_turns is None
    assert config.setting_sources is None


def test_sizes_are_docker_style_and_normalised() -> None:
    config = parse_config(
        minimal(resource_limits={"memory_limit": "1.5GB", "storage_limit": "512M"})
    )
    assert config.resource_limits.memory_limit == "1.5g"
    assert config.resource_limits.memory_bytes == 3 * GIB // 2
    assert config.resource_limits.storage_bytes == 512 << 20
    assert parse_size("1024") == 1024
    assert parse_size("4gib") == 4 * GIB


def test_tool_rules_aliases_and_mcp_patterns_are_accepted() -> None:
    config = parse_config(
        minimal(
            allowed_tools=["Bash(git diff:*)", "Task", "KillShell", "Agent", "Read", "Read"],
            mcp_servers={"db": {"type": "http", "url": "https://mcp.example.com/mcp"}},
            agents={"helper": {"description": "d", "prompt": "p", "tools": ["mcp__db__query"]}},
        )
    )
    # duplicates are dropped, order kept, MCP tools appended
    assert config.allowed_tools == [
        "Bash(git diff:*)",
        "Task",
        "KillShell",
        "Agent",
        "Read",
        "ListMcpResources",
        "ReadMcpResource",
        "mcp__db__*",
    ]


def test_every_builtin_tool_is_accepted() -> None:
    config = parse_config(minimal(allowed_tools=sorted(BUILTIN_TOOLS)))
    assert set(config.allowed_tools) == BUILTIN_TOOLS


def test_mcp_implied_tools_are_added_once() -> None:
    data = minimal(
        allowed_tools=["Read", "ListMcpResourcesTool", "mcp__a__*"],
        mcp_servers={"a": {"command": "a-server"}, "b": {"type": "sse", "url": "http://b:1/sse"}},
    )
    config = parse_config(data)
    assert config.allowed_tools == [
        "Read",
        "ListMcpResourcesTool",
        "mcp__a__*",
        "ReadMcpResource",
        "mcp__b__*",
    ]
    again = AgentConfig.from_wire(config.to_wire())
    assert again.allowed_tools == config.allowed_tools
    assert isinstance(config.mcp_servers["a"], StdioMcpServer)  # type defaults to stdio


def test_no_mcp_servers_means_no_implied_tools() -> None:
    assert parse_config(minimal(allowed_tools=["Read"])).allowed_tools == ["Read"]


def test_yaml_text_is_parsed_and_version_numbers_become_strings() -> None:
    config = parse_config("id: from-yaml\nname: From YAML\nversion: 2.0\nmax_turns: 5\n")
    assert (config.id, config.version, config.max_turns) == ("from-yaml", "2.0", 5)


def test_to_wire_is_json_data_without_unset_fields() -> None:
    wire = parse_config(minimal(system_prompt="Be brief.")).to_wire()
    assert wire["system_prompt"] == "Be brief."
    assert "max_turns" not in wire
    assert "model" not in wire
    assert wire["resource_limits"] == {
        "cpu_quota": 200_000,
        "memory_limit": "4g",
        "storage_limit": "10g",
        "pids_limit": 256,
    }
    preset_wire = parse_config(minimal()).to_wire()
    assert preset_wire["system_prompt"] == {"type": "preset", "preset": "claude_code"}


def test_resolved_mcp_servers_fill_launch_credentials() -> None:
    config = load_presets()["github-code-review"]
    servers = config.resolved_mcp_servers({"github": {"GITHUB_PERSONAL_ACCESS_TOKEN": "t0k"}})
    assert servers["github"]["env"] == {"GITHUB_PERSONAL_ACCESS_TOKEN": "t0k"}
    assert servers["github"]["type"] == "stdio"
    # the stored config is untouched: credentials are never kept
    server = config.mcp_servers["github"]
    assert isinstance(server, StdioMcpServer)
    assert server.env["GITHUB_PERSONAL_ACCESS_TOKEN"] == ""


def test_core_env_vars_cover_the_platform_variables() -> None:
    assert {
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "AGENT_CONFIG_JSON",
        "AGENT_ID",
        "CLAUDE_CONFIG_DIR",
        "HOME",
        "PATH",
    } <= CORE_ENV_VARS


# ------------------------------------------------------------------------------------------
# invalid configs: each is rejected with the offending field named
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        pytest.param({"id": "My Agent"}, "id", "not a valid id", id="bad-id"),
        pytest.param({"id": "../etc"}, "id", "not a valid id", id="id-path"),
        pytest.param({"name": "  "}, "name", "must not be empty", id="blank-name"),
        pytest.param(
            {"allowed_tools": ["Read", "Write", "Bsh"]},
            "allowed_tools.2",
            "did you mean 'Bash'",
            id="unknown-tool",
        ),
        pytest.param(
            {"allowed_tools": ["BashOutput"]},
            "allowed_tools.0",
            "not a tool in Claude Code",
            id="removed-tool",
        ),
        pytest.param(
            {"allowed_tools": ["mcp__github__create_issue"]},
            "allowed_tools.0",
            "MCP server 'github', which is not declared",
            id="mcp-undeclared-server",
        ),
        pytest.param(
            {"allowed_tools": ["mcp__"]},
            "allowed_tools.0",
            "not a valid MCP tool pattern",
            id="mcp-malformed",
        ),
        pytest.param(
            {"permission_mode": "yolo"}, "permission_mode", "'bypassPermissions'", id="mode"
        ),
        pytest.param(
            {"resource_limits": {"memory_limit": "4 gigs"}},
            "resource_limits.memory_limit",
            "not a size",
            id="memory-format",
        ),
        pytest.param(
            {"resource_limits": {"memory_limit": "16m"}},
            "resource_limits.memory_limit",
            "between",
            id="memory-too-small",
        ),
        pytest.param(
            {"resource_limits": {"storage_limit": "lots"}},
            "resource_limits.storage_limit",
            "not a size",
            id="storage-format",
        ),
        pytest.param(
            {"resource_limits": {"cpu_quota": 5_000}},
            "resource_limits.cpu_quota",
            "between 10000",
            id="cpu-too-low",
        ),
        pytest.param(
            {"resource_limits": {"cpu_quota": 3_200_000}},
            "resource_limits.cpu_quota",
            "between 10000",
            id="cpu-too-high",
        ),
        pytest.param(
            {"resource_limits": {"pids_limit": 8}},
            "resource_limits.pids_limit",
            "between 32",
            id="pids-too-low",
        ),
        pytest.param(
            {"env": {"ANTHROPIC_API_KEY": "sk-x"}},
            "env.ANTHROPIC_API_KEY",
            "cannot be overridden",
            id="env-core-var",
        ),
        pytest.param(
            {"env": {"AGC_SECRET": "x"}}, "env.AGC_SECRET", "cannot be overridden", id="env-agc"
        ),
        pytest.param(
            {"env": {"lower-case": "x"}},
            "env.lower-case",
            "not a valid variable name",
            id="env-name",
        ),
        pytest.param({"env": {"DEBUG": 1}}, "env.DEBUG", "valid string", id="env-value"),
        pytest.param(
            {"alowed_tools": ["Read"]},
            "alowed_tools",
            "did you mean 'allowed_tools'",
            id="extra-field",
        ),
        pytest.param(
            {"resource_limits": {"memory": "4g"}},
            "resource_limits.memory",
            "unknown field",
            id="extra-nested-field",
        ),
        pytest.param(
            {"system_prompt": {"type": "preset", "preset": "claude_web"}},
            "system_prompt.preset",
            "'claude_code'",
            id="bad-prompt-preset",
        ),
        pytest.param(
            {"system_prompt": 42}, "system_prompt", "must be a string or", id="prompt-type"
        ),
        pytest.param(
            {"agents": {"reviewer": {"description": "d", "prompt": "p", "tools": ["Reed"]}}},
            "agents.reviewer.tools.0",
            "did you mean 'Read'",
            id="sub-agent-unknown-tool",
        ),
        pytest.param(
            {"agents": {"reviewer": {"description": "d", "prompt": "p", "tools": ["mcp__x__y"]}}},
            "agents.reviewer.tools.0",
            "not declared",
            id="sub-agent-mcp-undeclared",
        ),
        pytest.param(
            {"agents": {"reviewer": {"description": "d", "prompt": "p", "model": "gpt-5"}}},
            "agents.reviewer.model",
            "'inherit'",
            id="sub-agent-model",
        ),
        pytest.param(
            {"agents": {"reviewer": {"prompt": "p"}}},
            "agents.reviewer.description",
            "is required",
            id="sub-agent-missing-description",
        ),
        pytest.param(
            {"mcp_servers": {"bad name": {"command": "x"}}},
            "mcp_servers.bad name",
            "not a valid MCP server name",
            id="mcp-server-name",
        ),
        pytest.param(
            {"mcp_servers": {"remote": {"url": "https://x"}}},
            "mcp_servers.remote",
            "needs type",
            id="mcp-server-no-type",
        ),
        pytest.param(
            {"mcp_servers": {"remote": {"type": "http", "url": "ftp://x"}}},
            "mcp_servers.remote.url",
            "not an http",
            id="mcp-server-url",
        ),
        pytest.param(
            {"mcp_servers": {"s": {"command": "x", "env": {"PATH": "/evil"}}}},
            "mcp_servers.s.env.PATH",
            "cannot be overridden",
            id="mcp-env-core-var",
        ),
        pytest.param(
            {"mcp_servers": {"s": {"command": "x", "envs": {}}}},
            "mcp_servers.s.envs",
            "did you mean 'env'",
            id="mcp-extra-field",
        ),
        pytest.param({"max_turns": 0}, "max_turns", "greater than or equal to 1", id="turns"),
        pytest.param(
            {"setting_sources": ["user", "global"]}, "setting_sources.1", "'local'", id="sources"
        ),
    ],
)
def test_invalid_config_names_the_field(fields: dict[str, Any], field: str, fragment: str) -> None:
    errors = errors_of(minimal(**fields))
    matching = [e for e in errors if e["field"] == field]
    assert matching, errors
    assert fragment in matching[0]["message"]


def test_missing_required_fields_are_each_listed() -> None:
    assert fields_of({}) == {"id", "name"}


def test_every_invalid_field_is_reported_not_just_the_first() -> None:
    errors = errors_of(
        {
            "id": "Bad Id",
            "name": "x",
            "allowed_tools": ["Read", "Nope"],
            "permission_mode": "nope",
            "resource_limits": {"cpu_quota": 1, "memory_limit": "x"},
            "env": {"HOME": "/"},
            "surprise": True,
        }
    )
    assert {e["field"] for e in errors} == {
        "id",
        "allowed_tools.1",
        "permission_mode",
        "resource_limits.cpu_quota",
        "resource_limits.memory_limit",
        "env.HOME",
        "surprise",
    }
    assert len(errors) == 7


def test_invalid_config_message_is_a_readable_sentence() -> None:
    with pytest.raises(InvalidConfig) as info:
        parse_config(minimal(allowed_tools=["Bsh"]))
    assert str(info.value).startswith("invalid agent config: allowed_tools.0: unknown tool 'Bsh'")
    assert isinstance(info.value, ConfigError)


def test_not_a_mapping_and_bad_yaml_are_config_level_errors() -> None:
    assert errors_of("- just\n- a list\n")[0]["field"] == ""
    assert "not valid YAML" in errors_of("id: [unclosed\n")[0]["message"]
    assert "mapping" in errors_of("")[0]["message"]


def test_field_errors_works_on_a_raw_validation_error() -> None:
    with pytest.raises(ValidationError) as info:
        AgentConfig.model_validate(minimal(mcp_servers={"s": {"type": "stdio"}}))
    assert field_errors(info.value) == [
        {"field": "mcp_servers.s.command", "message": "is required"}
    ]


def test_tool_problem_is_usable_on_its_own() -> None:
    assert tool_problem("Read") is None
    assert tool_problem("mcp__any__thing") is None  # no server list: syntax only
    assert tool_problem("mcp__any__thing", ["other"]) is not None
    assert tool_problem("mcp__my__server__tool", ["my__server"]) is None
    problem = tool_problem("read")
    assert problem is not None
    assert "did you mean 'Read'" in problem


# ------------------------------------------------------------------------------------------
# the store
# ------------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> ConfigStore:
    return ConfigStore(tmp_path / "custom")


def custom(config_id: str = "my-agent", **fields: Any) -> AgentConfig:
    return parse_config({"id": config_id, "name": "Custom", **fields})


def test_store_lists_presets_without_a_custom_dir(store: ConfigStore) -> None:
    assert [c.id for c in store.list_configs()] == sorted(PRESETS)
    assert store.list_custom() == []


def test_store_round_trip(store: ConfigStore) -> None:
    config = custom(
        system_prompt="Line one.\nLine two.\n",
        allowed_tools=["Read", "mcp__s__*"],
        mcp_servers={"s": {"command": "srv", "env": {"TOKEN": ""}}},
        agents={"a": {"description": "d", "prompt": "p", "tools": ["Read"]}},
        env={"LOG_LEVEL": "debug"},
        max_turns=7,
    )
    assert store.save_custom(config) is True
    assert store.get("my-agent") == config
    assert [c.id for c in store.list_custom()] == ["my-agent"]
    assert [c.id for c in store.list_configs()] == [*sorted(PRESETS), "my-agent"]
    text = (store.custom_dir / "my-agent.yaml").read_text()
    assert "Line one.\n" in text  # prompts are stored as readable blocks
    assert load_config_file(store.custom_dir / "my-agent.yaml") == config


def test_saving_an_existing_id_replaces_it(store: ConfigStore) -> None:
    assert store.save_custom(custom(description="first")) is True
    assert store.save_custom(custom(description="second")) is False
    assert store.get("my-agent").description == "second"
    # the atomic write leaves nothing behind but the config itself
    assert sorted(p.name for p in store.custom_dir.iterdir()) == ["my-agent.yaml"]


def test_custom_config_cannot_take_a_preset_id(store: ConfigStore) -> None:
    with pytest.raises(ConfigConflict):
        store.save_custom(custom("code-assistant"))
    assert not store.custom_dir.exists() or not any(store.custom_dir.iterdir())


def test_delete_custom(store: ConfigStore) -> None:
    store.save_custom(custom())
    store.delete_custom("my-agent")
    with pytest.raises(ConfigNotFound):
        store.get("my-agent")
    with pytest.raises(ConfigNotFound):
        store.delete_custom("my-agent")


def test_presets_are_read_only(store: ConfigStore) -> None:
    with pytest.raises(PresetReadOnly):
        store.delete_custom("research-agent")
    assert store.get("research-agent").id == "research-agent"


def test_unknown_and_unsafe_ids_are_not_found(store: ConfigStore) -> None:
    for config_id in ("nope", "../custom/x", "", "UPPER"):
        with pytest.raises(ConfigNotFound):
            store.get(config_id)
        with pytest.raises(ConfigNotFound):
            store.delete_custom(config_id)


def test_corrupt_custom_file_is_skipped_with_a_warning(
    store: ConfigStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.save_custom(custom("good"))
    (store.custom_dir / "broken.yaml").write_text("id: broken\nname: [unclosed\n")
    (store.custom_dir / "invalid.yaml").write_text("id: invalid\nname: x\nallowed_tools: [Nope]\n")
    (store.custom_dir / "renamed.yaml").write_text("id: other-id\nname: x\n")
    (store.custom_dir / "shadow.yaml").write_text("id: shadow\nname: x\n")
    (store.custom_dir / "shadow.yaml").rename(store.custom_dir / "code-assistant.yaml")
    (store.custom_dir / "code-assistant.yaml").write_text("id: code-assistant\nname: Fake\n")
    with caplog.at_level(logging.WARNING, logger="configs.store"):
        assert [c.id for c in store.list_custom()] == ["good"]
    warned = " ".join(r.getMessage() for r in caplog.records)
    for name in ("broken.yaml", "invalid.yaml", "renamed.yaml", "code-assistant.yaml"):
        assert name in warned
    assert store.get("code-assistant").name == "Code Assistant"  # the preset wins
    with pytest.raises(InvalidConfig) as info:
        store.get("invalid")
    assert info.value.errors[0]["field"] == "allowed_tools.0"
    store.delete_custom("broken")  # a broken file can still be removed
    assert not (store.custom_dir / "broken.yaml").exists()


def test_store_hands_out_copies(store: ConfigStore) -> None:
    store.get("code-assistant").allowed_tools.append("WebFetch")
    store.list_presets()[0].resource_limits.cpu_quota = 10_000
    assert store.get("code-assistant") == load_presets()["code-assistant"]
    assert "WebFetch" not in load_presets()["code-assistant"].allowed_tools
    assert load_presets()["code-assistant"].resource_limits.cpu_quota == 200_000


def test_save_revalidates_a_model_changed_after_construction(store: ConfigStore) -> None:
    config = custom()
    config.allowed_tools.append("Nope")
    with pytest.raises(InvalidConfig):
        store.save_custom(config)
    assert store.list_custom() == []


def test_load_config_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigNotFound):
        load_config_file(tmp_path / "absent.yaml")


def test_dump_config_is_loadable_yaml() -> None:
    for config in load_presets().values():
        data = yaml.safe_load(dump_config(config))
        assert parse_config(copy.deepcopy(data)) == config
