"""The keyring on a real SQLite store and a hand-moved clock: how often it reads the keys."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import Request

from batchgate.api.auth import REFRESH_SECONDS, UNKNOWN_KEY_REFRESH_SECONDS, Keyring
from batchgate.api.errors import ApiError
from batchgate.api.keys import key_hash, new_key
from batchgate.lifecycle.workspaces import workspace_owner
from batchgate.storage.base import ApiKeyRow
from batchgate.storage.sqlite import SQLiteStore


class CountingStore(SQLiteStore):
    """A real SQLite store that counts how often the keyring reads the keys."""

    loads = 0

    def api_keys(self) -> list[ApiKeyRow]:
        self.loads += 1
        return super().api_keys()


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    opened = CountingStore(str(tmp_path / "keys.db"))
    yield opened
    opened.close()


def request(key: str | None) -> Request:
    headers = [] if key is None else [(b"x-api-key", key.encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def owners(keyring: Keyring, *keys: str | None) -> list[str | int]:
    """Each key's owner tag, or the status of the error it got."""

    async def check(key: str | None) -> str | int:
        try:
            return (await keyring.caller(request(key))).owner
        except ApiError as error:
            return error.status

    async def check_all() -> list[str | int]:
        return [await check(key) for key in keys]

    return asyncio.run(check_all())


def test_keys_are_read_once_a_second_however_many_requests(store: CountingStore) -> None:
    red = new_key("red", 0)
    store.create_api_key(red.row)
    clock = Clock()
    keyring = Keyring(store, ("env-key",), clock)

    assert owners(keyring, *[red.key] * 500, *["env-key"] * 500) == [
        *[workspace_owner("red")] * 500,
        *[key_hash("env-key")] * 500,
    ]
    assert store.loads == 1
    clock.now += REFRESH_SECONDS - 0.01
    owners(keyring, red.key)
    assert store.loads == 1
    clock.now = Clock.now + REFRESH_SECONDS
    store.revoke_api_key(red.row.id, 0)
    assert owners(keyring, red.key, red.key) == [401, 401]
    assert store.loads == 2


def test_made_up_keys_cost_at_most_one_read_a_tenth_of_a_second(store: CountingStore) -> None:
    store.create_api_key(new_key("red", 0).row)
    clock = Clock()
    keyring = Keyring(store, (), clock)
    owners(keyring, None)
    made_up = [new_key("red", 0).key for _ in range(100)]
    # Strings not shaped like a database key are refused without reading anything.
    assert owners(keyring, *made_up, *["wrong"] * 100, None) == [401] * 201
    assert store.loads == 1
    clock.now += UNKNOWN_KEY_REFRESH_SECONDS
    assert owners(keyring, *made_up) == [401] * 100
    assert store.loads == 2


def test_a_new_key_is_read_as_soon_as_it_is_presented(store: CountingStore) -> None:
    clock = Clock()
    keyring = Keyring(store, (), clock)
    assert owners(keyring, "anything") == [key_hash("anything")]
    blue = new_key("blue", 0)
    store.create_api_key(blue.row)
    clock.now += UNKNOWN_KEY_REFRESH_SECONDS
    assert owners(keyring, blue.key, "anything", None) == [workspace_owner("blue"), 401, 401]
    assert store.loads == 2


def test_a_key_with_a_known_prefix_but_another_secret_is_refused(store: CountingStore) -> None:
    red = new_key("red", 0)
    store.create_api_key(red.row)
    forged = red.key[:-1] + ("A" if red.key[-1] != "A" else "B")
    assert owners(Keyring(store, (), Clock()), forged, red.key) == [401, workspace_owner("red")]
