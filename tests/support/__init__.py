"""Shared test helpers: the real local stack as subprocesses, SSE parsing."""
