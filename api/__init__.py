"""The Litestar API: REST + SSE for configs, agents and files; serves the dashboard at ``/``."""
