"""Token usage of model responses and what it costs, by model.

Prices are US dollars per million tokens (Anthropic's list prices). A cache write costs 1.25x
the input price (5-minute cache), a cache read 0.1x. A model id is matched by its longest
known prefix. The operator adds or corrects prices with ``AGC_MODEL_PRICES`` (a model newer
than this table, a negotiated rate); a model still unknown is priced like Sonnet, and the
worker logs that once per model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import msgspec

# prefix -> (input, output) USD per million tokens
PRICES: dict[str, tuple[float, float]] = {
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-1": (15.0, 75.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-3-opus": (15.0, 75.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-haiku": (0.25, 1.25),
}
DEFAULT_PRICE = (3.0, 15.0)
CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1


class ModelUsage(msgspec.Struct, kw_only=True):
    """Tokens of one or more model responses (the Messages API's ``usage`` fields)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def minus(self, other: ModelUsage) -> ModelUsage:
        return ModelUsage(
            input_tokens=self.input_tokens - other.input_tokens,
            output_tokens=self.output_tokens - other.output_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens
            - other.cache_creation_input_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens - other.cache_read_input_tokens,
        )

    def plus(self, other: ModelUsage) -> ModelUsage:
        return ModelUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens
            + other.cache_creation_input_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
        )

    def is_zero(self) -> bool:
        return not (
            self.input_tokens
            or self.output_tokens
            or self.cache_creation_input_tokens
            or self.cache_read_input_tokens
        )


@dataclass(frozen=True, slots=True)
class Price:
    model: str
    input: float
    output: float
    known: bool


class PriceTable:
    """The built-in prices with the operator's added on top (theirs win for the same prefix)."""

    def __init__(self, overrides: Mapping[str, tuple[float, float]] | None = None) -> None:
        self._prices = {**PRICES, **dict(overrides or {})}
        self._by_length = sorted(self._prices, key=len, reverse=True)

    def price_of(self, model: str) -> Price:
        """Return the price of ``model`` (longest known prefix, else the default)."""
        for prefix in self._by_length:
            if model.startswith(prefix):
                pin, pout = self._prices[prefix]
                return Price(model, pin, pout, True)
        return Price(model, *DEFAULT_PRICE, False)

    def cost_usd(self, model: str, usage: ModelUsage) -> float:
        """Return what ``usage`` of ``model`` costs in US dollars."""
        p = self.price_of(model)
        return (
            usage.input_tokens * p.input
            + usage.output_tokens * p.output
            + usage.cache_creation_input_tokens * p.input * CACHE_WRITE_FACTOR
            + usage.cache_read_input_tokens * p.input * CACHE_READ_FACTOR
        ) / 1_000_000


LIST_PRICES = PriceTable()


def cost_usd(model: str, usage: ModelUsage) -> float:
    """Return what ``usage`` of ``model`` costs at list prices, in US dollars."""
    return LIST_PRICES.cost_usd(model, usage)
