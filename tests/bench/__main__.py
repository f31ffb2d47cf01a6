"""Run benchmarks: ``python -m tests.bench [NAME ...] [OPTIONS ...]``.

Without a name the benchmarks of :data:`BENCHMARKS` that are present run, in that order; any
other module of this package with a ``main`` runs when named.
Options after the names go to each selected benchmark's own ``main`` (``-h`` shows them), so
``python -m tests.bench agents --launches 5`` runs only the agents benchmark, with 5 launches.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# What a bare ``python -m tests.bench`` runs, in this order; missing ones are skipped. Any other
# module of this package with a ``main`` runs when named.
BENCHMARKS = ("agents", "files", "sandbox")


def available() -> list[str]:
    """Return the default benchmark modules present in this tree."""
    return [name for name in BENCHMARKS if importlib.util.find_spec(f"tests.bench.{name}")]


def runnable() -> list[str]:
    """Return every module of this package that can be named on the command line."""
    package = Path(__file__).resolve().parent
    found = [m.name for m in pkgutil.iter_modules([str(package)]) if not m.name.startswith("_")]
    return sorted(set(found) | set(available()))


def _call_main(name: str, argv: list[str]) -> int:
    """Call ``tests.bench.NAME.main`` with ``argv``; return its exit code (None counts as 0)."""
    module = importlib.import_module(f"tests.bench.{name}")
    entry: Callable[..., Any] = module.main
    if inspect.signature(entry).parameters:
        result = entry(argv)
    else:
        # A main() that reads sys.argv itself.
        saved = sys.argv
        sys.argv = [f"python -m tests.bench {name}", *argv]
        try:
            result = entry()
        finally:
            sys.argv = saved
    return result if isinstance(result, int) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the named (default: all present) benchmarks; return the worst exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    present = available()
    known = runnable()
    names: list[str] = []
    while args and not args[0].startswith("-"):
        name = args.pop(0)
        if name not in known:
            print(
                f"no benchmark {name!r} (no tests/bench/{name}.py); present: {', '.join(known)}",
                file=sys.stderr,
            )
            return 2
        names.append(name)
    if not names and args in (["-h"], ["--help"]):
        print(__doc__)
        print(f"default: {', '.join(present) or 'none'}; present: {', '.join(known) or 'none'}")
        return 0
    worst = 0
    for name in names or present:
        print(f"== benchmark: {name}", flush=True)
        try:
            code = _call_main(name, args)
        except SystemExit as exc:  # argparse's -h and usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        worst = max(worst, code)
    return worst


if __name__ == "__main__":
    sys.exit(main())
