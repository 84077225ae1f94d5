"""Tenants: every API key belongs to a workspace, and a workspace's batches exist only inside it.

Each scenario runs on SQLite (one `batchgate serve`) and on PostgreSQL (`serve --no-worker` API
processes beside a `batchgate worker`), with keys made by `batchgate keys`, through the SDK.
"""

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import psycopg
import pytest
from psycopg import sql

from batchgate.api.auth import REFRESH_SECONDS, UNKNOWN_KEY_REFRESH_SECONDS
from batchgate.api.keys import key_hash
from batchgate.lifecycle.workspaces import workspace_owner
from conftest import Cluster, Server, simple_request, wait_until_ended
from key_commands import CreatedKey, create_key, keys_command

StartApis = Callable[[int], list[Server]]


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        # Where the `start_server` fixture's server keeps its database.
        return f"sqlite:///{tmp_path / 'batchgate.db'}"
    url: str = request.getfixturevalue("database_url")
    return url


@pytest.fixture
def start_apis(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[StartApis]:
    """Starts API processes on `database`: the one SQLite server, or PostgreSQL API-only
    processes and one worker."""
    extra: list[Server] = []

    def start(count: int) -> list[Server]:
        if database.startswith("sqlite"):
            assert count == 1, "SQLite serves one process"
            start_server: Callable[..., Server] = request.getfixturevalue("start_server")
            return [start_server()]
        cluster: Cluster = request.getfixturevalue("cluster")
        cluster.start_worker()
        apis = [cluster.start_api()]
        for number in range(1, count):
            directory = tmp_path / f"api-{number}"
            directory.mkdir()
            api = Server(directory)
            api.env["BATCHGATE_DATABASE_URL"] = database
            api.arguments = ["--no-worker"]
            extra.append(api.start())
            apis.append(api)
        return apis

    yield start
    for api in extra:
        api.stop()


def sdk(server: Server, key: CreatedKey | str) -> anthropic.Anthropic:
    return server.client(key if isinstance(key, str) else key.key)


def status_of(server: Server, key: str | None) -> int:
    headers = {} if key is None else {"x-api-key": key}
    return httpx.get(f"{server.base_url}/v1/messages/batches", headers=headers).status_code


def not_found_error(call: Callable[[], object]) -> dict[str, Any]:
    with pytest.raises(anthropic.NotFoundError) as raised:
        call()
    body = raised.value.body
    assert isinstance(body, dict)
    error: dict[str, Any] = body["error"]
    return error


def test_a_workspace_sees_none_of_another_workspaces_batches(
    database: str, start_apis: StartApis
) -> None:
    red, red_too, blue = (create_key(database, name) for name in ("red", "red", "blue"))
    [api] = start_apis(1)
    alice, carol, bob = sdk(api, red), sdk(api, red_too), sdk(api, blue)
    ended = alice.messages.batches.create(requests=[simple_request("secret")])  # type: ignore[list-item]
    wait_until_ended(alice, ended.id)
    running = alice.messages.batches.create(
        requests=[simple_request(f"r{i}") for i in range(50)]  # type: ignore[misc]
    )
    bobs = bob.messages.batches.create(requests=[simple_request("bob")])  # type: ignore[list-item]
    wait_until_ended(bob, bobs.id)

    never_existed = "msgbatch_0000000000000000000000"
    for batch_id in (ended.id, running.id):
        for path in ("", "/results", "/requests"):
            # Exactly the answer for an id that never existed: 404, so ids do not leak.
            foreign = not_found_error(
                lambda path=path, batch_id=batch_id: bob.get(
                    f"/v1/messages/batches/{batch_id}{path}", cast_to=str
                )
            )
            unknown = not_found_error(
                lambda path=path: bob.get(
                    f"/v1/messages/batches/{never_existed}{path}", cast_to=str
                )
            )
            assert foreign == {
                **unknown,
                "message": unknown["message"].replace(never_existed, batch_id),
            }
        for call in (
            lambda batch_id=batch_id: bob.messages.batches.retrieve(batch_id),
            lambda batch_id=batch_id: bob.messages.batches.cancel(batch_id),
            lambda batch_id=batch_id: bob.messages.batches.delete(batch_id),
            lambda batch_id=batch_id: list(bob.messages.batches.results(batch_id)),
        ):
            assert not_found_error(call)["type"] == "not_found_error"

    # Lists, and cursors naming another workspace's batches, show only the caller's own.
    for cursor in ({}, {"after_id": ended.id}, {"before_id": ended.id}, {"after_id": bobs.id}):
        for page_size in (1, 20):
            listed = bob.messages.batches.list(limit=page_size, **cursor)  # type: ignore[arg-type]
            assert {batch.id for batch in listed} <= {bobs.id}
    assert [batch.id for batch in bob.messages.batches.list()] == [bobs.id]

    # Another key of the same workspace sees, reads and manages the workspace's batches.
    assert [batch.id for batch in carol.messages.batches.list()] == [running.id, ended.id]
    assert [r.custom_id for r in carol.messages.batches.results(ended.id)] == ["secret"]
    assert carol.get(f"/v1/messages/batches/{ended.id}/requests", cast_to=str).startswith(
        '{"custom_id":"secret"'
    )
    # Bob's cancel did nothing to Alice's batch, which ends by itself.
    assert wait_until_ended(carol, running.id).request_counts.succeeded == 50
    assert carol.messages.batches.delete(ended.id).id == ended.id
    not_found_error(lambda: alice.messages.batches.retrieve(ended.id))
    assert [batch.id for batch in alice.messages.batches.list()] == [running.id]


def test_a_revoked_key_is_refused_by_every_process_within_a_second(
    database: str, start_apis: StartApis
) -> None:
    doomed, kept = create_key(database, "red"), create_key(database, "red")
    apis = start_apis(1 if database.startswith("sqlite") else 2)
    batch = sdk(apis[0], doomed).messages.batches.create(
        requests=[simple_request("kept")]  # type: ignore[list-item]
    )
    for api in apis:
        assert status_of(api, doomed.key) == status_of(api, kept.key) == 200

    assert keys_command(database, "revoke", doomed.id).exit_code == 0
    revoked = time.monotonic()
    first_refusal: dict[int, float] = {}
    while (started := time.monotonic()) < revoked + REFRESH_SECONDS + 0.5:
        for number, api in enumerate(apis):
            status = status_of(api, doomed.key)
            if status == 401:
                first_refusal.setdefault(number, started - revoked)
            if started > revoked + REFRESH_SECONDS:
                assert status == 401, f"API process {number} still takes the revoked key"
        time.sleep(0.02)
    assert sorted(first_refusal) == list(range(len(apis)))
    assert max(first_refusal.values()) <= REFRESH_SECONDS
    print(f"revoked key first refused after {first_refusal} s")

    # The workspace's other key, and the workspace's batches, are untouched.
    for api in apis:
        assert [b.id for b in sdk(api, kept).messages.batches.list()] == [batch.id]


def test_a_new_key_works_at_once_and_closes_an_open_server(
    start_server: Callable[..., Server],
) -> None:
    server = start_server()
    assert status_of(server, None) == status_of(server, "anything") == 200
    created = create_key(f"sqlite:///{server.database}", "red")
    made = time.monotonic()
    time.sleep(UNKNOWN_KEY_REFRESH_SECONDS)
    assert status_of(server, created.key) == 200
    time.sleep(max(0.0, made + REFRESH_SECONDS - time.monotonic()))
    assert status_of(server, None) == status_of(server, "anything") == 401
    assert status_of(server, created.key) == 200


def test_env_keys_keep_their_own_batches_beside_workspaces(
    start_server: Callable[..., Server],
) -> None:
    before = start_server(api_keys="team-key")
    old = before.client("team-key").messages.batches.create(requests=[simple_request("old")])  # type: ignore[list-item]
    before.stop()
    red = create_key(f"sqlite:///{before.database}", "red")

    server = start_server(api_keys="team-key")
    team, alice = server.client("team-key"), sdk(server, red)
    mine = alice.messages.batches.create(requests=[simple_request("mine")])  # type: ignore[list-item]
    assert [batch.id for batch in team.messages.batches.list()] == [old.id]
    assert [batch.id for batch in alice.messages.batches.list()] == [mine.id]
    not_found_error(lambda: alice.messages.batches.retrieve(old.id))
    not_found_error(lambda: team.messages.batches.retrieve(mine.id))
    assert status_of(server, "another-key") == 401


def test_a_database_key_lets_serve_listen_on_a_public_address(tmp_path: Path) -> None:
    red = create_key(f"sqlite:///{tmp_path / 'batchgate.db'}", "red")
    server = Server(tmp_path)
    server.arguments = ["--host", "0.0.0.0"]
    try:
        server.start()
        assert status_of(server, red.key) == 200
        assert status_of(server, None) == 401
    finally:
        server.stop()


def stored_text(database: str) -> bytes:
    """Everything the database holds, as bytes: every table's rows, or the SQLite files."""
    if database.startswith("sqlite:///"):
        path = Path(database.removeprefix("sqlite:///"))
        return b"".join(
            file.read_bytes() for file in path.parent.iterdir() if file.name.startswith(path.name)
        )
    with psycopg.connect(database) as db:
        tables = db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
        return b"".join(
            str(row[0]).encode()
            for (table,) in tables
            for row in db.execute(
                sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(table))
            ).fetchall()
        )


def test_keys_are_stored_only_as_hashes(database: str, start_apis: StartApis) -> None:
    red, blue = create_key(database, "red"), create_key(database, "blue")
    [api] = start_apis(1)
    for key in (red, blue):
        sdk(api, key).messages.batches.create(requests=[simple_request("a")])  # type: ignore[list-item]
    keys_command(database, "revoke", blue.id)
    stored = stored_text(database)
    for key in (red, blue):
        assert key.key.encode() not in stored
        assert key_hash(key.key).encode() in stored
        assert key.key.encode() not in api.log.read_bytes()
    assert workspace_owner("red").encode() in stored
