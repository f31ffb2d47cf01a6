"""Where agent configs come from: the shipped presets and a directory of custom YAML configs.

Presets (``configs/presets/<id>.yaml``) are read once per process and are read-only. Custom
configs live in ``custom_dir/<id>.yaml`` (the API's ``AGC_CONFIG_DIR``); they are written
atomically and read on every call, so edits by hand or by another API replica show up at once.
Everything here is blocking file I/O on small files: async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

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
from configs.model import AgentConfig, field_errors, is_valid_id

# stdlib logging rather than structlog: this package is also imported inside the agent image,
# which does not ship structlog. The API's structlog setup renders these records too.
log = logging.getLogger(__name__)

#: The presets shipped with the code (package data, see pyproject's ``package-data``).
PRESETS_DIR = Path(__file__).resolve().parent / "presets"

_SUFFIX = ".yaml"
_HEADER = "# AgCluster agent config (custom). Field reference: configs/README.md\n"


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def parse_config(
    data: Mapping[str, Any] | str | bytes, *, source: str | None = None
) -> AgentConfig:
    """Validate a config given as a mapping (decoded JSON) or as YAML/JSON text.

    Raises :class:`InvalidConfig` listing every invalid field; ``source`` (a file name, say)
    is only used in its message.
    """
    if isinstance(data, str | bytes):
        try:
            loaded = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise InvalidConfig([{"field": "", "message": _yaml_problem(exc)}], source) from None
    else:
        loaded = data
    if not isinstance(loaded, Mapping):
        kind = "empty" if loaded is None else f"a {type(loaded).__name__}"
        message = f"a config must be a mapping of fields (id, name, ...), not {kind}"
        raise InvalidConfig([{"field": "", "message": message}], source)
    try:
        return AgentConfig.model_validate(loaded)
    except ValidationError as exc:
        raise InvalidConfig(field_errors(exc), source) from None


def load_config_file(path: Path | str) -> AgentConfig:
    """Read and validate one YAML config file.

    :class:`ConfigNotFound` if it does not exist, :class:`InvalidConfig` if it does not
    validate, :class:`ConfigError` if it cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigNotFound(path.stem, f"no config file at {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    return parse_config(text, source=path.name)


def dump_config(config: AgentConfig) -> str:
    """The YAML text a config is stored as (prompts as readable ``|`` blocks)."""
    return _HEADER + yaml.dump(
        config.to_wire(),
        Dumper=_BlockDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings as literal blocks so stored prompts stay readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML: {problem}{where}"


# --------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------


@functools.cache
def load_presets(presets_dir: Path = PRESETS_DIR) -> Mapping[str, AgentConfig]:
    """Every preset in ``presets_dir`` by id, read once per process.

    A broken preset is a bug in the shipped code, so it raises :class:`InvalidConfig` rather
    than being skipped. Callers must not mutate the returned configs (copy them first).
    """
    presets: dict[str, AgentConfig] = {}
    for path in sorted(presets_dir.glob(f"*{_SUFFIX}")):
        config = load_config_file(path)
        if config.id != path.stem:
            raise InvalidConfig(
                [{"field": "id", "message": f"preset file {path.name} must hold id {path.stem!r}"}],
                path.name,
            )
        presets[config.id] = config
    return MappingProxyType(presets)


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


class ConfigStore:
    """Presets plus the custom configs in ``custom_dir`` (created on first save).

    Ids are unique across both: a custom config can never shadow a preset. Every method
    returns fresh copies, so callers may modify what they get.
    """

    def __init__(self, custom_dir: Path | str, *, presets_dir: Path = PRESETS_DIR) -> None:
        self.custom_dir = Path(custom_dir)
        self._presets_dir = presets_dir

    # -- reading --------------------------------------------------------------------------

    @property
    def _presets(self) -> Mapping[str, AgentConfig]:
        return load_presets(self._presets_dir)

    def is_preset(self, config_id: str) -> bool:
        return config_id in self._presets

    def list_presets(self) -> list[AgentConfig]:
        """The presets, in id order."""
        return [c.model_copy(deep=True) for c in self._presets.values()]

    def list_custom(self) -> list[AgentConfig]:
        """The valid custom configs, in id order.

        A file that does not parse, does not validate, is not named ``<id>.yaml`` or takes a
        preset's id is skipped with a warning: one bad file must not hide the others.
        """
        out: list[AgentConfig] = []
        if not self.custom_dir.is_dir():
            return out
        for path in sorted(self.custom_dir.glob(f"*{_SUFFIX}")):
            try:
                config = self._load_custom(path)
            except ConfigError as exc:
                log.warning("skipping custom agent config %s: %s", path, exc)
                continue
            if self.is_preset(config.id):
                log.warning(
                    "skipping custom agent config %s: id %r belongs to a preset", path, config.id
                )
                continue
            out.append(config)
        return out

    def list_configs(self) -> list[AgentConfig]:
        """Presets first, then custom configs."""
        return [*self.list_presets(), *self.list_custom()]

    def get(self, config_id: str) -> AgentConfig:
        """The preset or custom config with this id.

        :class:`ConfigNotFound` if there is none; :class:`InvalidConfig` if its custom file
        exists but is broken (the listing skips it; fetching it says why).
        """
        preset = self._presets.get(config_id)
        if preset is not None:
            return preset.model_copy(deep=True)
        path = self._custom_path(config_id)
        if path is None or not path.is_file():
            raise ConfigNotFound(config_id)
        return self._load_custom(path)

    # -- writing --------------------------------------------------------------------------

    def save_custom(self, config: AgentConfig) -> bool:
        """Store ``config`` as ``<id>.yaml``, replacing a custom config with the same id.

        Returns ``True`` if it was new. :class:`ConfigConflict` if the id is a preset's.
        The write is atomic: readers see the old file or the new one, never a torn one.
        """
        if self.is_preset(config.id):
            raise ConfigConflict(config.id)
        # Re-validate: a model can be changed after construction without validation, and
        # what lands on disk must load again.
        checked = parse_config(config.to_wire())
        path = self._custom_path(checked.id)
        assert path is not None  # the id validated, so it is a safe file name
        created = not path.exists()
        _atomic_write(path, dump_config(checked))
        log.info("saved custom agent config %s (%s)", checked.id, "new" if created else "replaced")
        return created

    def delete_custom(self, config_id: str) -> None:
        """Remove a custom config. :class:`PresetReadOnly` for a preset, else
        :class:`ConfigNotFound` if there is no such custom config (broken files can be deleted).
        """
        if self.is_preset(config_id):
            raise PresetReadOnly(config_id)
        path = self._custom_path(config_id)
        if path is None:
            raise ConfigNotFound(config_id)
        try:
            path.unlink()
        except FileNotFoundError:
            raise ConfigNotFound(config_id) from None
        log.info("deleted custom agent config %s", config_id)

    # -- internals ------------------------------------------------------------------------

    def _custom_path(self, config_id: str) -> Path | None:
        # Only a valid id becomes a file name, which rules out "../x" and friends.
        if not is_valid_id(config_id):
            return None
        return self.custom_dir / f"{config_id}{_SUFFIX}"

    def _load_custom(self, path: Path) -> AgentConfig:
        config = load_config_file(path)
        if config.id != path.stem:
            error: FieldError = {
                "field": "id",
                "message": (
                    f"the file holds id {config.id!r} but is named {path.name}; "
                    f"rename it to {config.id}{_SUFFIX}"
                ),
            }
            raise InvalidConfig([error], path.name)
        return config


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temp file starts with "." and ends in ".tmp" so a listing never picks it up.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        tmp.chmod(0o644)  # mkstemp makes it 0600; configs hold no secrets
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    # Persist the rename itself, so a crash right after a save cannot lose it.
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
