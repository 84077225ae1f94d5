"""Splitting requests over the per-batch limits: counts and encoded bytes."""

import json

import pytest

from batchgate.cli.client import splitting
from batchgate.cli.client.failures import CommandFailure
from batchgate.cli.client.splitting import split_into_batches
from conftest import simple_request


def test_batches_hold_at_most_the_request_limit_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(splitting, "MAX_REQUESTS_PER_BATCH", 3)
    requests = [simple_request(f"r{i}") for i in range(7)]

    batches = split_into_batches(requests)

    assert [len(batch) for batch in batches] == [3, 3, 1]
    assert [request for batch in batches for request in batch] == requests


def test_every_sdk_encoding_of_a_batch_fits_the_byte_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limit = 2_000
    monkeypatch.setattr(splitting, "MAX_BATCH_BYTES", limit)
    requests = [simple_request(f"r{i}", "naïve café ☕ 𝄞 " * 5) for i in range(20)]

    batches = split_into_batches(requests)

    assert len(batches) > 1
    assert [request for batch in batches for request in batch] == requests
    for batch in batches:
        body = {"requests": batch}
        spaced_ascii = json.dumps(body).encode()
        compact_utf8 = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        assert max(len(spaced_ascii), len(compact_utf8)) <= limit


def test_a_request_larger_than_a_batch_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(splitting, "MAX_BATCH_BYTES", 500)
    with pytest.raises(CommandFailure, match="request 'huge' alone takes"):
        split_into_batches([simple_request("small"), simple_request("huge", "x" * 1_000)])
