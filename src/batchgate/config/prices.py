"""Prices: what tokens cost, per model (`[[prices]]` of `--config`), for `cost` and /v1/usage.

Each entry names a glob on the model a result reports and its USD per million input, output,
cache-write and cache-read tokens; the first match wins. `batch_discount` multiplies the total
(0.5: batches cost half the list price, as Anthropic's do). Without entries, nothing is costed.
"""

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from batchgate.config.settings import ConfigError
from batchgate.storage.base import TokenUsage

PER_MILLION = 1_000_000


@dataclass(frozen=True)
class Price:
    """One `[[prices]]` entry: USD per million tokens of each kind."""

    model: str
    input: float
    output: float
    cache_write: float = 0.0
    cache_read: float = 0.0
    batch_discount: float = 1.0

    def cost(self, usage: TokenUsage) -> float:
        list_price = (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_creation_input_tokens * self.cache_write
            + usage.cache_read_input_tokens * self.cache_read
        ) / PER_MILLION
        return list_price * self.batch_discount


@dataclass(frozen=True)
class PriceTable:
    prices: tuple[Price, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.prices)

    def price_of(self, model: str) -> Price | None:
        return next((p for p in self.prices if fnmatch.fnmatchcase(model, p.model)), None)

    def cost(self, usage_by_model: Iterable[tuple[str, TokenUsage]]) -> float | None:
        """USD for the usage; None without a price table. Models no entry matches cost 0."""
        if not self.prices:
            return None
        total = 0.0
        for model, usage in usage_by_model:
            price = self.price_of(model)
            if price is not None:
                total += price.cost(usage)
        return total


NO_PRICES = PriceTable()


def read_prices(entries: object, path: Path) -> PriceTable:
    """The `[[prices]]` of the file at `path`, each checked."""
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ConfigError(f"{path}: prices must be an array of tables ([[prices]])")
    known = {field.name for field in fields(Price)}
    prices = []
    for number, entry in enumerate(entries, 1):
        where = f"{path}: [[prices]] #{number}"
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r}; keys are {sorted(known)}")
        model = entry.get("model")
        if not isinstance(model, str) or not model:
            raise ConfigError(f"{where}: model must be a model name or glob")
        for name in ("input", "output"):
            if name not in entry:
                raise ConfigError(f"{where}: {name} (USD per million tokens) is required")
        numbers = {}
        for name, value in entry.items():
            if name == "model":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{where}: {name} must be a number of at least 0, not {value!r}")
            numbers[name] = float(value)
        prices.append(Price(model=model, **numbers))
    return PriceTable(tuple(prices))
