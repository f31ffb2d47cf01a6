"""A scripted Anthropic Messages API server the test suite owns (real SSE, loopback only)."""
