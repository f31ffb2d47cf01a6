"""Run benchmarks: ``python -m tests.bench [NAME ...] [OPTIONS ...]``.

Without a name every benchmark module present runs, in the order of :data:`BENCHMARKS`.
Options after the names go to each selected benchmark's own ``main`` (``-h`` shows them), so
``python -m tests.bench agents --launches 5`` runs only the agents benchmark, with 5 launches.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Sequence
from typing import Any

# Benchmark modules under tests.bench, each with a ``main``; missing ones are skipped.
BENCHMARKS = ("agents", "files")


def available() -> list[str]:
    """Return the benchmark modules present in this tree."""
    return [name for name in BENCHMARKS if importlib.util.find_spec(f"tests.bench.{name}")]


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
    names: list[str] = []
    while args and not args[0].startswith("-"):
        name = args.pop(0)
        if name not in BENCHMARKS:
            print(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
            return 2
        if name not in present:
            print(
                f"benchmark {name!r} is not in this tree (no tests/bench/{name}.py)",
                file=sys.stderr,
            )
            return 2
        names.append(name)
    if not names and args in (["-h"], ["--help"]):
        print(__doc__)
        print(f"present: {', '.join(present) or 'none'}")
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
