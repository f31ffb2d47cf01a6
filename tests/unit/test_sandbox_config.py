"""What the sandbox boundary reads from the typed agent config: the gateway keeps remote MCP
servers' real URLs and headers, the runner gets the config without them."""

from __future__ import annotations

from configs.model import AgentConfig
from configs.store import load_presets
from workers.sandbox.policy import EgressPolicy
from workers.sandbox.service import mcp_routes, runner_config

CONFIG = AgentConfig.from_wire(
    {
        "id": "mcp",
        "name": "MCP",
        "mcp_servers": {
            "remote": {
                "type": "http",
                "url": "https://mcp.example.com/v1?tenant=t1",
                "headers": {"Authorization": "Bearer mcp-secret"},
            },
            "events": {"type": "sse", "url": "https://sse.example.com/s#frag"},
            "local": {"type": "stdio", "command": "mcp-local", "env": {"TOKEN": ""}},
        },
        "egress": {"policy": "allowlist", "domains": ["API.example.com"]},
    }
)


def test_the_gateway_gets_remote_servers_with_their_real_urls_and_headers() -> None:
    routes = mcp_routes(CONFIG)
    assert set(routes) == {"remote", "events"}  # a stdio server runs inside, no route
    assert routes["remote"].url == "https://mcp.example.com/v1?tenant=t1"
    assert routes["remote"].headers == {"Authorization": "Bearer mcp-secret"}
    assert routes["events"].headers == {}
    assert EgressPolicy.from_egress(CONFIG.egress) == EgressPolicy(
        "allowlist", ("api.example.com",)
    )


def test_the_runner_gets_the_config_without_headers_or_queries() -> None:
    wire = runner_config(CONFIG)
    assert "mcp-secret" not in repr(wire) and "tenant" not in repr(wire)
    servers = wire["mcp_servers"]
    assert servers["remote"] == {"type": "http", "url": "https://mcp.example.com/v1", "headers": {}}
    assert servers["events"]["url"] == "https://sse.example.com/s"
    assert servers["local"] == CONFIG.to_wire()["mcp_servers"]["local"]
    # The rest is the config as sent, and the runner decodes it as the same model.
    assert {k: v for k, v in wire.items() if k != "mcp_servers"} == {
        k: v for k, v in CONFIG.to_wire().items() if k != "mcp_servers"
    }
    assert AgentConfig.from_wire(wire).egress == CONFIG.egress
    # The original is untouched: the gateway's routes still carry the secrets.
    assert mcp_routes(CONFIG)["remote"].headers


def test_a_config_without_remote_servers_reaches_the_runner_as_sent() -> None:
    # A warm slot's prestart and the launch's init must carry the same config (the runner
    # compares them): both are runner_config of the decoded wire config.
    for preset in load_presets().values():
        assert runner_config(AgentConfig.from_wire(preset.to_wire())) == runner_config(preset)
        if not any(s.type != "stdio" for s in preset.mcp_servers.values()):
            assert runner_config(preset) == preset.to_wire()
