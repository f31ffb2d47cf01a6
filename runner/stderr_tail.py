"""A bounded ring of the Claude Code CLI's stderr lines: the reason behind most failures."""

from __future__ import annotations

import logging
from collections import deque

log = logging.getLogger("runner.cli")

_MAX_LINE = 4000


class StderrTail:
    """Collect CLI stderr lines (the ``ClaudeAgentOptions.stderr`` callback) and log them."""

    def __init__(self, max_lines: int = 500) -> None:
        self._lines: deque[tuple[int, str]] = deque(maxlen=max_lines)
        self._count = 0

    def __call__(self, line: str) -> None:
        """Record one line (the SDK calls this from its stderr reader task)."""
        line = line.rstrip("\n")
        if not line.strip():
            return
        if len(line) > _MAX_LINE:
            line = line[:_MAX_LINE] + "…"
        self._count += 1
        self._lines.append((self._count, line))
        log.info("cli: %s", line)

    @property
    def mark(self) -> int:
        """Return a position; :meth:`since` gives the lines recorded after it."""
        return self._count

    def since(self, mark: int, max_chars: int = 8000) -> str:
        """Return the lines recorded after ``mark`` (the newest ``max_chars`` of them)."""
        return _clip([line for n, line in self._lines if n > mark], max_chars)

    def tail(self, lines: int = 40, max_chars: int = 8000) -> str:
        """Return the last ``lines`` lines."""
        return _clip([line for _, line in list(self._lines)[-lines:]], max_chars)


def _clip(lines: list[str], max_chars: int) -> str:
    text = "\n".join(lines)
    return text if len(text) <= max_chars else "…" + text[-max_chars:]
