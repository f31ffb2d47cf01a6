"""The server's own tests use its fixture directly (not only through tests/conftest.py)."""

from tests.modelserver.fixture import model_server  # noqa: F401  (fixture)
