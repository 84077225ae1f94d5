"""Read-only keys (`batchgate keys create --read-only`): they see their workspace's batches and
are refused, 403 permission_error, on every call that changes something."""

import json
from collections.abc import Callable
from pathlib import Path

import anthropic
import pytest
from anthropic.types.messages import MessageBatch

from conftest import Server, simple_request, wait_until_ended
from key_commands import create_key, keys_command


def test_a_read_only_key_sees_its_workspace_but_changes_nothing(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    url = f"sqlite:///{tmp_path / 'batchgate.db'}"
    writer, reader = create_key(url, "blue"), create_key(url, "blue", read_only=True)
    assert [key["read_only"] for key in json.loads(keys_command(url, "list", "--json").stdout)] == [
        False,
        True,
    ]
    server = start_server(database_url=url)
    owner, viewer = server.client(writer.key), server.client(reader.key)
    batch = owner.messages.batches.create(requests=[simple_request("a")])  # type: ignore[list-item]
    wait_until_ended(owner, batch.id)

    assert viewer.messages.batches.retrieve(batch.id).id == batch.id
    assert [b.id for b in viewer.messages.batches.list()] == [batch.id]
    assert [r.custom_id for r in viewer.messages.batches.results(batch.id)] == ["a"]
    for call in (
        lambda: viewer.messages.batches.create(requests=[simple_request("b")]),  # type: ignore[list-item]
        lambda: viewer.messages.batches.cancel(batch.id),
        lambda: viewer.messages.batches.delete(batch.id),
        lambda: viewer.post(f"/v1/messages/batches/{batch.id}/retry", cast_to=MessageBatch),
    ):
        with pytest.raises(anthropic.PermissionDeniedError) as refused:
            call()
        assert refused.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
        assert "read-only" in refused.value.message
    assert [b.id for b in owner.messages.batches.list()] == [batch.id]
