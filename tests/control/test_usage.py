"""Token usage and cost on the batch object, and GET /v1/usage, through the official SDK."""

import datetime
from collections.abc import Callable
from typing import Any

import anthropic
import pytest

from conftest import Server, simple_request, wait_until_ended

TOKEN_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
# tests/control/conftest.py PRICES: USD per million tokens, and the batch discount.
SONNET = {"input_tokens": 3.0, "output_tokens": 15.0, "cache_creation_input_tokens": 3.75,
          "cache_read_input_tokens": 0.30}  # fmt: skip
OTHER = {"input_tokens": 1.0, "output_tokens": 5.0}


def mixed_requests() -> list[dict[str, Any]]:
    sonnet = [simple_request(f"s{i}", "word " * i) for i in range(30)]
    haiku = [
        simple_request(f"h{i}", "hello " * i, model="claude-haiku-4-5-20251001") for i in range(10)
    ]
    invalid = [simple_request("bad", max_tokens=-1)]
    return sonnet + haiku + invalid


def summed_from_results(client: anthropic.Anthropic, batch_id: str) -> dict[str, dict[str, int]]:
    by_model: dict[str, dict[str, int]] = {}
    for result in client.messages.batches.results(batch_id):
        if result.result.type == "succeeded":
            message = result.result.message
            usage = message.usage.to_dict()
            totals = by_model.setdefault(message.model, dict.fromkeys(TOKEN_KEYS, 0))
            for key in TOKEN_KEYS:
                totals[key] += usage.get(key) or 0
    return by_model


def expected_cost(by_model: dict[str, dict[str, int]]) -> float:
    total = 0.0
    for model, usage in by_model.items():
        if model.startswith("claude-sonnet-4-5"):
            total += sum(usage[key] * SONNET[key] for key in TOKEN_KEYS) / 1e6 * 0.5
        else:
            total += sum(usage[key] * OTHER.get(key, 0) for key in TOKEN_KEYS) / 1e6
    return total


def total(by_model: dict[str, dict[str, int]]) -> dict[str, int]:
    return {key: sum(usage[key] for usage in by_model.values()) for key in TOKEN_KEYS}


def test_usage_and_cost_are_the_sums_over_the_results(
    start_on_store: Callable[..., Server],
) -> None:
    server = start_on_store(prices=True, chunk_size="7")
    client = server.client()
    batch = client.messages.batches.create(requests=mixed_requests())  # type: ignore[arg-type]
    assert batch.to_dict()["usage"] == dict.fromkeys(TOKEN_KEYS, 0)
    assert batch.to_dict()["cost"] == {"usd": 0.0, "currency": "USD"}
    ended = wait_until_ended(client, batch.id).to_dict()
    by_model = summed_from_results(client, batch.id)
    assert set(by_model) == {"claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"}
    assert ended["usage"] == total(by_model)
    assert ended["usage"]["input_tokens"] > 0 and ended["usage"]["output_tokens"] > 0
    assert ended["cost"]["currency"] == "USD"
    assert ended["cost"]["usd"] == pytest.approx(expected_cost(by_model), abs=2e-6)
    # The list shows the same.
    [listed] = [b for b in client.messages.batches.list() if b.id == batch.id]
    assert listed.to_dict()["usage"] == ended["usage"]


def test_without_prices_cost_is_null(server: Server) -> None:
    client = server.client()
    batch = client.messages.batches.create(requests=[simple_request("a")])  # type: ignore[list-item]
    ended = wait_until_ended(client, batch.id).to_dict()
    assert ended["cost"] is None and ended["usage"]["output_tokens"] > 0


def usage_report(client: anthropic.Anthropic, **params: object) -> dict[str, Any]:
    report: dict[str, Any] = client.get("/v1/usage", cast_to=object, options={"params": params})
    return report


def test_usage_report_by_model_and_day_for_the_callers_workspace_only(
    start_on_store: Callable[..., Server],
) -> None:
    server = start_on_store(prices=True)
    client = server.client()
    batch = client.messages.batches.create(requests=mixed_requests())  # type: ignore[arg-type]
    wait_until_ended(client, batch.id)
    by_model = summed_from_results(client, batch.id)
    other = server.client("sk-other")
    wait_until_ended(other, other.messages.batches.create(requests=mixed_requests()).id)  # type: ignore[arg-type]
    today = datetime.datetime.now(datetime.UTC).date().isoformat()

    report = usage_report(client, group_by="model,day")
    assert report["group_by"] == ["model", "day"]
    groups = {group["model"]: group for group in report["data"]}
    assert set(groups) == {*by_model, None}
    for model, usage in by_model.items():
        assert groups[model]["day"] == today
        assert groups[model]["usage"] == usage
        assert groups[model]["cost"]["usd"] == pytest.approx(
            expected_cost({model: usage}), abs=2e-6
        )
    assert groups["claude-haiku-4-5-20251001"]["requests"]["succeeded"] == 10
    assert groups[None]["requests"] == {"succeeded": 0, "errored": 1, "canceled": 0, "expired": 0}

    [whole] = usage_report(client)["data"]
    assert whole["usage"] == total(by_model)
    assert whole["requests"] == {"succeeded": 40, "errored": 1, "canceled": 0, "expired": 0}
    assert whole["cost"]["usd"] == pytest.approx(expected_cost(by_model), abs=2e-6)

    [by_day] = usage_report(client, group_by="day")["data"]
    assert by_day["day"] == today and by_day["requests"] == whole["requests"]
    tomorrow = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
    assert (
        usage_report(client, starting_at=tomorrow, ending_at=tomorrow + "T01:00:00Z")["data"] == []
    )


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"group_by": "team"}, "group_by"),
        ({"starting_at": "yesterday"}, "starting_at"),
        ({"starting_at": "2026-12-02", "ending_at": "2026-12-01"}, "before ending_at"),
    ],
)
def test_bad_usage_queries_are_400(server: Server, params: dict[str, str], fragment: str) -> None:
    with pytest.raises(anthropic.BadRequestError, match=fragment):
        usage_report(server.client(), **params)
