"""The one error tree of :mod:`configs`.

The API maps these to HTTP statuses in one place: :class:`ConfigNotFound` → 404,
:class:`ConfigConflict` → 409, :class:`PresetReadOnly` → 403, :class:`InvalidConfig` → 422.
``str(exc)`` is a complete sentence fit to show a user.
"""

from __future__ import annotations

from typing import TypedDict


class FieldError(TypedDict):
    """One problem with one field: ``field`` is a dotted path such as ``allowed_tools.2``."""

    field: str
    message: str


class ConfigError(Exception):
    """Base of every error raised by :mod:`configs`."""


class ConfigNotFound(ConfigError):
    """No preset or custom config has this id (or the config file does not exist)."""

    def __init__(self, config_id: str, detail: str | None = None) -> None:
        self.config_id = config_id
        super().__init__(detail or f"no agent config with id {config_id!r}")


class ConfigConflict(ConfigError):
    """A custom config may not take the id of a preset."""

    def __init__(self, config_id: str, detail: str | None = None) -> None:
        self.config_id = config_id
        super().__init__(
            detail or f"{config_id!r} is the id of a preset; choose another id for a custom config"
        )


class PresetReadOnly(ConfigError):
    """Presets ship with the code and cannot be changed or deleted through the store."""

    def __init__(self, config_id: str) -> None:
        self.config_id = config_id
        super().__init__(f"{config_id!r} is a preset and cannot be changed or deleted")


class InvalidConfig(ConfigError):
    """A config failed validation; ``errors`` lists every invalid field, not only the first."""

    def __init__(self, errors: list[FieldError], source: str | None = None) -> None:
        self.errors = errors
        self.source = source
        where = f" in {source}" if source else ""
        if not errors:
            text = f"invalid agent config{where}"
        elif len(errors) == 1:
            text = f"invalid agent config{where}: {_describe(errors[0])}"
        else:
            shown = "; ".join(_describe(e) for e in errors[:3])
            more = f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
            text = f"invalid agent config{where} ({len(errors)} problems): {shown}{more}"
        super().__init__(text)


def _describe(error: FieldError) -> str:
    return f"{error['field']}: {error['message']}" if error["field"] else error["message"]
