"""The pieces of an upload cut off midway (its server stopped before the file's row was stored)
are deleted by a running engine's housekeeping once the upload is older than its body's timeout
and the grace, on either store; a more recent one is kept until it is that old too."""

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from batchgate.config.routes import DEFAULT_ROUTES
from batchgate.config.settings import Settings
from batchgate.engine import worker
from batchgate.engine.routing import Router
from batchgate.engine.worker import Engine
from batchgate.lifecycle.ids import file_ids_before
from batchgate.storage import Store, open_store
from batchgate.storage.migrations.postgres import migrate
from postgres_databases import Databases

HOUR = 3600.0


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path, databases: Databases) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'batchgate.db'}"
    else:
        url = databases.create()
        migrate(url)
    opened = open_store(url)
    yield opened
    opened.close()


def _cut_off_upload(store: Store, started_at: float) -> str:
    """An upload started at `started_at` whose first two pieces were stored, and no more."""
    file_id = f"{file_ids_before(started_at)}cutoffupload123"
    store.add_file_piece(file_id, 0, b'{"custom_id": "a"}\n')
    store.add_file_piece(file_id, 1, b'{"custom_id": "b"}\n')
    return file_id


def _stored(store: Store, file_id: str) -> bool:
    return b"".join(store.iter_file(file_id)) != b""


async def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, "housekeeping did not delete the upload's pieces"
        await asyncio.sleep(0.05)


def test_housekeeping_deletes_an_abandoned_uploads_pieces_once_past_the_grace(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(body_timeout_seconds=300.0)
    monkeypatch.setattr(worker, "ABANDONED_UPLOADS_SECONDS", 0.1)
    monkeypatch.setattr(worker, "ABANDONED_UPLOAD_GRACE_SECONDS", HOUR)
    # Started before the body's timeout and the grace, and within them.
    now = time.time()
    abandoned = _cut_off_upload(store, now - settings.body_timeout_seconds - 2 * HOUR)
    recent = _cut_off_upload(store, now - settings.body_timeout_seconds - HOUR / 2)
    engine = Engine(store, settings, Router.from_config(DEFAULT_ROUTES, settings))

    async def scenario() -> None:
        running = asyncio.create_task(engine.run())
        try:
            await _wait_for(lambda: not _stored(store, abandoned))
            # The sweep that deleted the one looked at the other too, and kept it.
            assert _stored(store, recent)
            # Later, once the recent upload is past the grace too (here, the grace shorter):
            # a later sweep deletes it.
            monkeypatch.setattr(worker, "ABANDONED_UPLOAD_GRACE_SECONDS", HOUR / 4)
            await _wait_for(lambda: not _stored(store, recent))
        finally:
            engine.stop()
            await running

    asyncio.run(scenario())
