"""List pages: newest first, and the SDK's iteration walks every batch exactly once."""

import asyncio
from collections.abc import Callable

from conftest import Server, simple_request


def test_sdk_pagination_walks_every_batch_once(start_server: Callable[..., Server]) -> None:
    server = start_server()
    client = server.client()
    created = [
        client.messages.batches.create(requests=[simple_request("r")]).id  # type: ignore[list-item]
        for _ in range(23)
    ]
    newest_first = list(reversed(created))

    assert [batch.id for batch in client.messages.batches.list(limit=5)] == newest_first

    page = client.messages.batches.list(limit=10)
    walked = [batch.id for batch in page.data]
    while page.has_next_page():
        page = page.get_next_page()
        walked += [batch.id for batch in page.data]
    assert walked == newest_first
    assert page.has_more is False and len(page.data) == 3

    first = client.messages.batches.list(limit=10)
    assert (first.first_id, first.last_id, first.has_more) == (
        newest_first[0],
        newest_first[9],
        True,
    )

    older = client.messages.batches.list(limit=4, after_id=newest_first[9])
    assert [b.id for b in older.data] == newest_first[10:14]
    newer = client.messages.batches.list(limit=4, before_id=newest_first[9])
    assert [b.id for b in newer.data] == newest_first[5:9]
    assert newer.has_more is True
    # Walking with before_id pages towards newer batches, each page newest first.
    backwards = [b.id for b in client.messages.batches.list(limit=3, before_id=newest_first[9])]
    assert backwards == newest_first[6:9] + newest_first[3:6] + newest_first[0:3]

    async def walk_async() -> list[str]:
        return [b.id async for b in server.async_client().messages.batches.list(limit=7)]

    assert asyncio.run(walk_async()) == newest_first

    # A deleted cursor still works: ids sort by creation time.
    client.messages.batches.delete(newest_first[9])
    after_deleted = client.messages.batches.list(limit=2, after_id=newest_first[9])
    assert [b.id for b in after_deleted.data] == newest_first[10:12]
    empty = client.messages.batches.list(limit=5, after_id=newest_first[-1])
    assert (empty.data, empty.has_more, empty.first_id, empty.last_id) == ([], False, None, None)
