"""Servers on either store for the control extensions' tests (docs/api.md, "Beyond the
original"): each test using `start_on_store` runs once on SQLite and once on PostgreSQL."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from batchgate.storage.migrations.postgres import migrate
from conftest import Server
from postgres_databases import Databases

PRICES = """
[[prices]]
model = "claude-sonnet-4-5*"
input = 3.0
output = 15.0
cache_write = 3.75
cache_read = 0.30
batch_discount = 0.5

[[prices]]
model = "*"
input = 1.0
output = 5.0
"""


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def start_on_store(
    store_kind: str, tmp_path: Path, databases: Databases
) -> Iterator[Callable[..., Server]]:
    """Starts a server on the parametrized store with the given settings (BATCHGATE_<NAME>);
    `prices=True` gives it the price table PRICES."""
    started: list[Server] = []

    def start(prices: bool = False, **settings: str) -> Server:
        directory = tmp_path / f"server{len(started)}"
        directory.mkdir()
        if store_kind == "postgres":
            url = databases.create()
            migrate(url)
            settings["database_url"] = url
        if prices:
            config = directory / "batchgate.toml"
            config.write_text(PRICES)
            settings["config"] = str(config)
        server = Server(directory, **settings).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
