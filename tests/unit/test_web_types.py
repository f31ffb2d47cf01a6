"""The dashboard's event types (web/src/events.gen.ts) match the msgspec schema in broker/events.py."""

from __future__ import annotations

import datetime
import enum
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import msgspec

from broker import events

REPO = Path(__file__).resolve().parents[2]
GEN = REPO / "scripts" / "gen-web-types.py"
TS = REPO / "web" / "src" / "events.gen.ts"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GEN), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_committed_file_is_current() -> None:
    r = run("--check")
    assert r.returncode == 0, f"{r.stderr}\nregenerate: .venv/bin/python scripts/gen-web-types.py"


def test_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "events.gen.ts"
    stale.write_text(TS.read_text().replace('"session.ready"', '"session.gone"'))
    r = run("--check", "--out", str(stale))
    assert r.returncode == 1
    assert "stale" in r.stderr


def test_every_event_and_field_is_typed() -> None:
    text = TS.read_text()
    for tag, cls in events.EVENT_TYPES.items():
        body = re.search(rf"export interface {cls.__name__} \{{\n(.*?)\n\}}", text, flags=re.DOTALL)
        assert body, f"no interface for {cls.__name__}"
        assert f'  type: "{tag}";' in body.group(1)
        for f in msgspec.structs.fields(cls):
            opt = "" if f.required else "[?]"
            assert re.search(rf"^  {f.encode_name}{opt}: ", body.group(1), re.M), (
                f"{cls.__name__}.{f.name}"
            )
        assert f"  | {cls.__name__}" in text  # a member of AnyEvent


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_web_types", GEN)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Inner(msgspec.Struct, kw_only=True):
    """Nested."""

    n: int
    tags: dict[str, int] = msgspec.field(default_factory=dict)


class Base(msgspec.Struct, tag_field="type", kw_only=True):
    session_id: str


class Sample(Base, tag="sample.one"):
    """A sample with ``code``."""

    when: datetime.datetime
    color: Color
    mode: Literal["a", "b"] = "a"
    pair: tuple[int, str] | None = None
    inner: Inner | None = None
    many: list[Inner | str] = msgspec.field(default_factory=list)
    anything: Any = None


class Other(Base, tag="sample.two"):
    pass


def test_generator_maps_the_schema_types_it_may_meet() -> None:
    text = _generator().render([Sample, Other])
    body = text.split("export interface Sample {\n", 1)[1].split("\n}", 1)[0].splitlines()
    assert body == [
        '  type: "sample.one";',
        "  when: string;",
        "  color: Color;",
        '  mode?: "a" | "b";',
        "  pair?: [number, string] | null;",
        "  inner?: Inner | null;",
        "  many?: (string | Inner)[];",
        "  anything?: unknown;",
        "  session_id: string;",
    ]
    assert "/** A sample with `code`. */" in text
    assert 'export type Color = "blue" | "red";' in text
    assert "  tags?: Record<string, number>;" in text
    assert "  | Other;" in text
    assert (
        'export const EVENT_TYPES: readonly EventType[] = [\n  "sample.one",\n  "sample.two",\n];'
        in text
    )
