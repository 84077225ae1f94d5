"""API keys: 401 without a valid one, and each key sees only its own batches."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anthropic
import httpx
import pytest

from conftest import Server, simple_request, wait_until_ended


def test_configured_keys_are_required(start_server: Callable[..., Server]) -> None:
    server = start_server(api_keys="key-a,key-b")
    url = f"{server.base_url}/v1/messages/batches"
    for headers in ({}, {"x-api-key": "wrong"}, {"authorization": "Bearer wrong"}):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
    assert httpx.get(url, headers={"x-api-key": "key-a"}).status_code == 200
    assert httpx.get(url, headers={"authorization": "Bearer key-b"}).status_code == 200
    with pytest.raises(anthropic.AuthenticationError):
        server.client(api_key="wrong").messages.batches.list()


def test_one_key_never_sees_another_keys_batches(start_server: Callable[..., Server]) -> None:
    server = start_server(api_keys="key-a,key-b")
    alice, bob = server.client("key-a"), server.client("key-b")
    batch = alice.messages.batches.create(requests=[simple_request("secret")])  # type: ignore[list-item]
    wait_until_ended(alice, batch.id)
    assert [b.id for b in bob.messages.batches.list()] == []
    for call in (
        lambda: bob.messages.batches.retrieve(batch.id),
        lambda: bob.messages.batches.cancel(batch.id),
        lambda: bob.messages.batches.delete(batch.id),
    ):
        with pytest.raises(anthropic.NotFoundError):
            call()
    results_url = f"{server.base_url}/v1/messages/batches/{batch.id}/results"
    assert httpx.get(results_url, headers={"x-api-key": "key-b"}).status_code == 404
    assert [b.id for b in alice.messages.batches.list()] == [batch.id]
    assert alice.messages.batches.retrieve(batch.id).id == batch.id


def test_refuses_a_public_address_without_keys(tmp_path: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "batchgate", "serve", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "BATCHGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}"},
    )
    assert finished.returncode == 2
    assert "without API keys" in finished.stderr


def test_warns_loudly_without_keys(start_server: Callable[..., Server]) -> None:
    server = start_server()
    assert "NO API KEYS CONFIGURED" in server.log.read_text()
