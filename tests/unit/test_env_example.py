"""``.env.example`` documents every setting the API, the workers and ``agcluster up`` read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from agcluster.settings import UpSettings
from api.settings import ApiSettings
from workers.settings import WorkerSettings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def env_names(cls: type[BaseSettings]) -> dict[str, list[str]]:
    """Each field's environment names: its aliases, else the prefixed field name."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names: dict[str, list[str]] = {}
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names[name] = [str(choice) for choice in alias.choices]
        elif isinstance(alias, str):
            names[name] = [alias]
        else:
            names[name] = [f"{prefix}{name}".upper()]
    return names


def listed() -> set[str]:
    """Names set in the file, or shown commented out (``# NAME=default``)."""
    return set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M))


@pytest.mark.parametrize("cls", [ApiSettings, WorkerSettings, UpSettings])
def test_every_setting_is_in_env_example(cls: type[BaseSettings]) -> None:
    names = listed()
    missing = {f: n for f, n in env_names(cls).items() if not names.intersection(n)}
    assert not missing, f"add to .env.example: {missing}"


def test_env_example_values_are_plain() -> None:
    """No inline comments: Compose v1 would make them part of the value."""
    for line in ENV_EXAMPLE.read_text().splitlines():
        if re.match(r"^(?:# )?[A-Z][A-Z0-9_]*=", line):
            assert " #" not in line, line
