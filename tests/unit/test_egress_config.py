"""The agent config's ``egress`` field: its shapes, its errors, the presets' policies, and how
the worker's proxy reads the wire form."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from configs.model import AgentConfig
from configs.store import load_presets
from workers.sandbox.policy import EgressDenied, EgressPolicy


def config(egress: Any) -> AgentConfig:
    return AgentConfig.model_validate({"id": "eg", "name": "Egress test", "egress": egress})


def test_default_is_model_only_and_a_name_alone_is_a_policy() -> None:
    assert AgentConfig.model_validate({"id": "eg", "name": "E"}).egress.policy == "model"
    assert config("open").egress.policy == "open"
    wire = config(
        {"policy": "allowlist", "domains": ["API.GitHub.com.", "*.x.org", "h.x.org:8443"]}
    )
    assert wire.to_wire()["egress"] == {
        "policy": "allowlist",
        "domains": ["api.github.com", "*.x.org", "h.x.org:8443"],
    }
    policy = EgressPolicy.from_egress(AgentConfig.from_wire(wire.to_wire()).egress)
    policy.check_name("api.github.com", 443)
    with pytest.raises(EgressDenied):
        policy.check_name("github.com", 443)


@pytest.mark.parametrize(
    ("egress", "message"),
    [
        ({"policy": "allowlist"}, "at least one domain"),
        ({"policy": "model", "domains": ["a.com"]}, "allowlist policy"),
        ({"policy": "allowlist", "domains": ["http://a.com/x"]}, "not a domain pattern"),
        ({"policy": "everything"}, "policy"),
        ({"policy": "open", "extra": 1}, "extra"),
    ],
)
def test_bad_egress_is_a_field_error(egress: Any, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        config(egress)
    assert message in str(info.value)
    assert all(err["loc"][0] == "egress" for err in info.value.errors())


def test_presets_get_the_network_they_need() -> None:
    presets = load_presets()
    assert presets["research-agent"].egress.policy == "open"
    assert presets["github-code-review"].egress.domains == ["api.github.com"]
    assert {"pypi.org", "files.pythonhosted.org"} <= set(presets["data-analysis"].egress.domains)
    for cid in ("code-assistant", "fullstack-team"):
        assert "registry.npmjs.org" in presets[cid].egress.domains
    assert presets["research-agent"].summary()["egress"] == {"policy": "open", "domains": []}
