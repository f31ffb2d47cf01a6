"""Fixtures of the fast unit tests."""

from tests.support.worker_env import env  # noqa: F401  (re-exported fixture)
