"""Bounded replay buffer of encoded envelopes, for ``attach{after_seq}``."""

from __future__ import annotations

from collections import deque


class ReplayBuffer:
    """Keep the last ``capacity`` protocol lines, at most ``max_bytes`` of them, oldest out first.

    The byte bound matters as much as the count: a few large tool results (file reads) must
    not eat a memory-limited container.
    """

    def __init__(self, capacity: int = 5000, max_bytes: int = 32 << 20) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self._items: deque[tuple[int, bytes]] = deque()
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._bytes = 0

    def append(self, seq: int, line: bytes) -> None:
        """Record the line for ``seq``; seqs must increase. The newest line is always kept."""
        self._items.append((seq, line))
        self._bytes += len(line)
        while len(self._items) > 1 and (
            len(self._items) > self._capacity or self._bytes > self._max_bytes
        ):
            self._bytes -= len(self._items.popleft()[1])

    def since(self, after_seq: int) -> list[tuple[int, bytes]]:
        """Return every kept ``(seq, line)`` with ``seq > after_seq``, oldest first."""
        if not self._items or after_seq >= self._items[-1][0]:
            return []
        # seqs are contiguous, so the start index is arithmetic, not a scan.
        first = self._items[0][0]
        start = max(0, after_seq + 1 - first)
        return [self._items[i] for i in range(start, len(self._items))]

    @property
    def first_seq(self) -> int | None:
        return self._items[0][0] if self._items else None

    @property
    def last_seq(self) -> int:
        return self._items[-1][0] if self._items else 0

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)
