"""What only a shared database has to get right: many workers and processes at once."""

import itertools
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

import orjson
import psycopg
from psycopg import sql

from batchgate.storage.base import LeasedChunk, ResultCounts, ResultPart, open_store
from batchgate.storage.migrations.postgres import migrate
from batchgate.storage.postgres import PostgresStore
from batchgate.storage.postgres_presence import ENGINE_LOCK_CLASS, SETTLING_SECONDS
from postgres_databases import Databases
from storage.builders import LEASE, NOW, OWNER, create, part, result_lines

WORKERS = 4


def run_together(*jobs: Callable[[], None]) -> None:
    """Runs the jobs in threads released at the same moment; re-raises the first failure."""
    start = threading.Barrier(len(jobs))
    failures: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        start.wait()
        try:
            job()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def test_racing_workers_never_lease_the_same_chunk(
    postgres_store: PostgresStore, postgres_store_factory: Callable[[], PostgresStore]
) -> None:
    for batch in range(4):
        create(postgres_store, f"msgbatch_{batch}", sizes=(1,) * 50)
    taken: list[list[tuple[str, int]]] = [[] for _ in range(WORKERS)]

    def worker(number: int) -> Callable[[], None]:
        store = postgres_store_factory()

        def lease_until_none_left() -> None:
            while leased := store.lease_chunks(f"w{number}", 3, NOW, LEASE):
                taken[number].extend((chunk.batch_id, chunk.chunk_no) for chunk in leased)

        return lease_until_none_left

    run_together(*(worker(number) for number in range(WORKERS)))
    everything = [key for keys in taken for key in keys]
    assert len(everything) == len(set(everything)) == 200
    assert all(taken), "every worker got some chunks: they really raced"


def test_each_request_ends_once_while_workers_steal_each_others_chunks(
    postgres_store: PostgresStore, postgres_store_factory: Callable[[], PostgresStore]
) -> None:
    """Leases last no time at all, so every lease call takes chunks that others are working on;
    each worker saves a random share of what is left. Exactly-once must still hold."""
    chunks, size = 100, 8
    create(postgres_store, "msgbatch_1", sizes=(size,) * chunks)
    clock = itertools.count(int(NOW))  # strictly increasing: every lease has already lapsed
    refused = Counter[bool]()

    def worker(number: int) -> Callable[[], None]:
        store = postgres_store_factory()
        chance = random.Random(number)

        def save_share(chunk: LeasedChunk) -> None:
            left = [i for i in range(size) if i not in chunk.done_indices]
            share = chance.sample(left, chance.randint(1, len(left)))
            part = ResultPart(
                chunk.batch_id,
                chunk.chunk_no,
                chunk.next_part,
                share,
                result_lines(chunk, share),
                ResultCounts(succeeded=len(share)),
                chunk_done=len(share) == len(left),
            )
            refused[not store.save_part(f"w{number}", part, next(clock))] += 1

        def work() -> None:
            while True:
                leased = store.lease_chunks(f"w{number}", 2, next(clock), 0)
                for chunk in leased:
                    save_share(chunk)
                batch = store.get_batch(OWNER, "msgbatch_1")
                if batch is not None and batch.status == "ended":
                    return

        return work

    run_together(*(worker(number) for number in range(WORKERS)))
    lines = b"".join(postgres_store.iter_results("msgbatch_1")).splitlines()
    custom_ids = Counter(orjson.loads(line)["custom_id"] for line in lines)
    assert len(custom_ids) == chunks * size
    assert set(custom_ids.values()) == {1}
    batch = postgres_store.get_batch(OWNER, "msgbatch_1")
    assert batch is not None
    assert (batch.processing, batch.succeeded) == (0, chunks * size)
    assert refused[True] > 0, "some saves came after the chunk changed hands"


def test_work_announced_by_another_process_wakes_this_one(
    postgres_store: PostgresStore, postgres_store_factory: Callable[[], PostgresStore]
) -> None:
    woken = threading.Event()
    postgres_store.on_work_announced(woken.set)
    other = postgres_store_factory()
    started = time.monotonic()
    other.announce_work()
    assert woken.wait(2)
    assert time.monotonic() - started < 0.1


def test_listener_reconnects_and_wakes_when_its_connection_drops(
    postgres_store: PostgresStore, migrated_url: str
) -> None:
    woken = threading.Event()
    postgres_store.on_work_announced(woken.set)

    def the_listener(other_than: int | None = None) -> int:
        """The one listener's backend pid (a closed store's may take a moment to go)."""
        with psycopg.connect(migrated_url, autocommit=True) as db:
            for _ in range(100):
                pids: list[int] = [
                    pid
                    for (pid,) in db.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                        " AND application_name = 'batchgate-listener'"
                    )
                    if pid != other_than
                ]
                if len(pids) == 1:
                    return pids[0]
                time.sleep(0.03)
        raise AssertionError(f"not exactly one listener: {pids}")

    dropped = the_listener()
    with psycopg.connect(migrated_url, autocommit=True) as db:
        db.execute("SELECT pg_terminate_backend(%s)", (dropped,))
    # Announcements may have been lost while it was away: it wakes the engine on reconnecting.
    assert woken.wait(3)
    the_listener(other_than=dropped)

    woken.clear()
    postgres_store.announce_work()
    assert woken.wait(2)


def test_open_store_takes_both_postgres_url_schemes(migrated_url: str) -> None:
    for url in (migrated_url, migrated_url.replace("postgresql://", "postgres://", 1)):
        store = open_store(url)
        try:
            assert isinstance(store, PostgresStore)
        finally:
            store.close()


def lock_holder(database_url: str, worker_id: str) -> int | None:
    """The backend pid holding the engine's lock (its store's LISTEN connection), if any."""
    with psycopg.connect(database_url, autocommit=True) as db:
        row = db.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid = %s AND objid = hashtext(%s)::oid"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (ENGINE_LOCK_CLASS, worker_id),
        ).fetchone()
    return None if row is None else int(row[0])


def wait_for_lock(database_url: str, worker_id: str, held: bool) -> None:
    deadline = time.monotonic() + 5
    while (lock_holder(database_url, worker_id) is not None) != held:
        assert time.monotonic() < deadline, f"the lock of {worker_id} is still {not held}"
        time.sleep(0.01)


def test_an_engine_that_is_gone_gives_its_chunks_back_at_once(
    migrated_url: str,
    postgres_store: PostgresStore,
    postgres_store_factory: Callable[[], PostgresStore],
) -> None:
    """Its lock ended with its connections: its chunks are claimable at once, long before its
    leases lapse, and it can commit nothing more. Live engines keep theirs."""
    create(postgres_store, "msgbatch_1", sizes=(1,) * 3)
    gone, alive = postgres_store_factory(), postgres_store_factory()
    gone.register_engine("gone")
    alive.register_engine("alive")
    postgres_store.register_engine("survivor")
    held = gone.lease_chunks("gone", 2, NOW, LEASE)
    assert len(held) == 2 and len(alive.lease_chunks("alive", 1, NOW, LEASE)) == 1
    time.sleep(SETTLING_SECONDS)
    assert postgres_store.recover_abandoned_chunks() == 0

    gone.close()  # as a process that dies: its connections end
    wait_for_lock(migrated_url, "gone", held=False)
    assert postgres_store.recover_abandoned_chunks() == 2
    assert postgres_store.recover_abandoned_chunks() == 0
    taken = postgres_store.lease_chunks("survivor", 10, NOW + 1, LEASE)
    assert sorted(chunk.chunk_no for chunk in taken) == [0, 1]
    late = postgres_store_factory()
    assert not late.save_part("gone", part(held[0], 0, [0], done=True), NOW + 2)


def test_an_engine_whose_own_connection_just_came_back_takes_no_chunks_yet(
    migrated_url: str,
    postgres_store: PostgresStore,
    postgres_store_factory: Callable[[], PostgresStore],
) -> None:
    """A database restart ends every engine's connection at once and each reconnects on its
    own: one back first must not take the chunks of those still reconnecting."""
    create(postgres_store, "msgbatch_1")
    postgres_store.register_engine("survivor")
    other = postgres_store_factory()
    other.register_engine("other")
    assert len(other.lease_chunks("other", 1, NOW, LEASE)) == 1
    time.sleep(SETTLING_SECONDS)

    with psycopg.connect(migrated_url, autocommit=True) as db:
        # Waits (up to 5 s) until the backend is gone.
        db.execute(
            "SELECT pg_terminate_backend(%s, 5000)", (lock_holder(migrated_url, "survivor"),)
        )
    other.close()  # still reconnecting, or gone: it cannot be told apart yet
    wait_for_lock(migrated_url, "other", held=False)
    wait_for_lock(migrated_url, "survivor", held=True)  # reconnected
    assert postgres_store.recover_abandoned_chunks() == 0
    time.sleep(SETTLING_SECONDS)
    assert postgres_store.recover_abandoned_chunks() == 1


def test_an_engine_keeps_its_lock_on_a_database_that_ends_idle_sessions(
    databases: Databases,
) -> None:
    """Managed databases often set idle_session_timeout; the LISTEN connection is idle by
    nature, and its end would drop the engine's lock (its chunks would look abandoned)."""
    url = databases.create()
    migrate(url)
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            sql.SQL("ALTER DATABASE {} SET idle_session_timeout = '300ms'").format(
                sql.Identifier(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
            )
        )
    store = PostgresStore(url, pool_size=2)
    woken = threading.Event()
    try:
        store.register_engine("patient")
        store.on_work_announced(woken.set)
        holder = lock_holder(url, "patient")
        assert holder is not None
        time.sleep(1.5)  # five timeouts' worth of idling
        assert lock_holder(url, "patient") == holder
        woken.clear()
        store.announce_work()  # a pooled connection, idle as long, is replaced unnoticed
        assert woken.wait(2)
    finally:
        store.close()
