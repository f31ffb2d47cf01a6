"""Cost figures: the built-in list prices, and the operator's own on top (AGC_MODEL_PRICES)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from workers.sandbox.pricing import ModelUsage, PriceTable, cost_usd
from workers.sandbox.service import SandboxService
from workers.settings import WorkerSettings

USAGE = ModelUsage(input_tokens=1_000_000, output_tokens=100_000, cache_read_input_tokens=10_000)


def test_a_model_newer_than_the_table_is_priced_as_the_operator_says() -> None:
    table = PriceTable({"claude-opus-5": (5.0, 25.0), "claude-sonnet-4": (2.0, 10.0)})
    assert not PriceTable().price_of("claude-opus-5-5").known
    assert table.price_of("claude-opus-5-5").known
    assert table.cost_usd("claude-opus-5-5", USAGE) == pytest.approx(5 + 2.5 + 0.005)
    # The operator's price wins for a prefix the table knows; others keep the list price.
    assert table.cost_usd("claude-sonnet-4-5", USAGE) == pytest.approx(2 + 1 + 0.002)
    assert table.cost_usd("claude-haiku-4-5", USAGE) == cost_usd("claude-haiku-4-5", USAGE)


def test_the_setting_reaches_the_sessions_recorded_cost(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AGC_MODEL_PRICES", '{"claude-opus-5": [5, 25]}')
    settings = WorkerSettings()
    assert settings.model_prices == {"claude-opus-5": (5.0, 25.0)}
    written: list[float] = []

    async def persist(_sid: str, _usage: ModelUsage, cost: float) -> None:
        written.append(cost)

    async def run() -> tuple[ModelUsage, float]:
        svc = SandboxService(
            tmp_path,
            upstream="",
            persist=persist,
            on_denied=lambda _d: None,
            prices=PriceTable(settings.model_prices),
        )
        # What the gateway reports for one model response (Gateway.record -> on_usage).
        svc._on_usage("sess-a", "claude-opus-5-5", USAGE)
        taken = svc.take_turn_usage("sess-a")
        await svc.aclose()  # waits for the usage write (a task of its own)
        return taken

    usage, cost = asyncio.run(run())
    assert usage == USAGE and cost == pytest.approx(7.505)
    assert written == [pytest.approx(7.505)]
