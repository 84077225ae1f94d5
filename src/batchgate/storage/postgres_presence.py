"""How the engines sharing a PostgreSQL database know which of them are alive.

Each engine holds a session advisory lock keyed by its worker id, on the connection its process
keeps for its lifetime to LISTEN for announced work (never a pooled one: a lock taken there
would outlive a checkout). PostgreSQL drops the lock the moment that connection ends: when the
process dies, even by `kill -9`, or the connection is cut. A lease whose owner holds no lock is
abandoned, and the other engines put its chunk back in the queue at their next poll instead of
waiting for the lease to lapse. The lapse stays the fallback for an engine that is alive but
hung, or whose host vanished without closing its connections (the server then keeps the lock
until its TCP keepalive gives up).

The lock's key is the pair (ENGINE_LOCK_CLASS, hashtext(worker_id)), computed by PostgreSQL
both when an engine takes it and when others look for it. Locks are taken shared, so engines
whose ids hash alike all hold theirs: a collision only makes a dead engine look alive, and its
chunks wait for their leases to lapse.
"""

import logging
import threading
import time
from collections.abc import Callable

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from batchgate.storage.migrations.postgres import CONNECT_TIMEOUT_SECONDS

log = logging.getLogger("batchgate.storage")

WORK_CHANNEL = "batchgate_work"
# Parts committed, the payload their batch's id: how followers of results learn of new lines.
PARTS_CHANNEL = "batchgate_parts"
# Events committed: the payload is their workspace.
EVENTS_CHANNEL = "batchgate_events"
LISTEN_CHECK_SECONDS = 0.25
# The server version that has idle_session_timeout (PostgreSQL 14).
IDLE_SESSION_TIMEOUT_SINCE = 140000
RECONNECT_SECONDS = (0.1, 0.5, 1.0)
# "batc": the first half of every engine's lock key (the migration lock has a one-part key).
ENGINE_LOCK_CLASS = 0x62617463
# A database restart drops every engine's lock at once, and each engine reconnects on its own
# schedule (at most RECONNECT_SECONDS[-1] apart): an engine whose own connection came back
# within this long takes no other engine's chunks yet, since their owners may be reconnecting.
SETTLING_SECONDS = 2.0
# How long an engine starting up waits for its lock before it counts the database unavailable.
LOCK_WAIT_SECONDS = CONNECT_TIMEOUT_SECONDS

# The engines alive: those holding their lock (a condition on a row's `lease_owner`).
OWNER_ALIVE = sql.SQL(
    "hashtext(lease_owner)::oid IN (SELECT objid FROM pg_locks"
    "   WHERE locktype = 'advisory' AND classid = {lock_class} AND objsubid = 2 AND granted"
    "   AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
).format(lock_class=sql.Literal(ENGINE_LOCK_CLASS))
ABANDONED_OWNERS = sql.SQL(
    "SELECT DISTINCT lease_owner FROM chunks WHERE state = 1 AND NOT {owner_alive}"
).format(owner_alive=OWNER_ALIVE)
# Webhook deliveries being attempted by engines that are gone: back to their turn at once
# rather than when their leases lapse. Rows a concurrent recovery holds are skipped.
RECOVER_ABANDONED_DELIVERIES = sql.SQL(
    "UPDATE webhook_deliveries SET lease_owner = NULL, lease_expires = NULL"
    " WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending'"
    "   AND lease_owner IS NOT NULL AND NOT {owner_alive} FOR UPDATE SKIP LOCKED)"
).format(owner_alive=OWNER_ALIVE)


def abandoned_lease_owners(db: psycopg.Connection[TupleRow]) -> list[str]:
    """The owners of leased chunks that hold no engine lock: engines that are gone.

    An engine takes its lock before its first lease, and a lease visible to this statement
    was committed before the statement started, so an owner whose lock is missing from
    pg_locks (read after) has lost it since: a brand-new engine is never taken for a dead one.
    """
    return [owner for (owner,) in db.execute(ABANDONED_OWNERS)]


class WorkListener:
    """A connection of its own that LISTENs for announced work (or, on `channel`, for another
    announcement) and holds the locks of the process's engines (hold_lock). A daemon thread
    calls every callback with each notification's payload. When the connection drops it
    reconnects, takes the locks again, and calls the callbacks once with "", since
    announcements sent meanwhile are lost."""

    def __init__(self, database_url: str, channel: str = WORK_CHANNEL) -> None:
        self._database_url = database_url
        self._channel = channel
        self._callbacks: list[Callable[[str], object]] = []
        self._closed = threading.Event()
        # What the thread shares with callers: the engines whose locks it holds, and since when
        # its connection is up (None while it is down).
        self._state = threading.Condition()
        self._worker_ids: set[str] = set()
        self._locked: set[str] = set()
        self._connected_at: float | None = None
        # Connected here, so that announcements are heard from the moment the first callback is
        # registered; the thread owns the connection from then on.
        connection = self._connect()
        self._thread = threading.Thread(
            target=self._listen, args=(connection,), name="batchgate-listen", daemon=True
        )
        self._thread.start()

    def add(self, callback: Callable[[str], object]) -> None:
        self._callbacks.append(callback)

    def hold_lock(self, worker_id: str) -> None:
        """Returns once the engine's lock is held: from then on until `close`, it is taken again
        whenever the connection is. Raises OperationalError if it is not held in time."""
        with self._state:
            self._worker_ids.add(worker_id)
            if not self._state.wait_for(lambda: worker_id in self._locked, LOCK_WAIT_SECONDS):
                raise psycopg.OperationalError("the engine's lock could not be taken yet")

    def settled(self) -> bool:
        """Whether the engines' locks have been held, on a connection up for SETTLING_SECONDS:
        until then other engines' locks may be missing only because they are reconnecting too,
        and this process's own may be."""
        with self._state:
            return (
                self._connected_at is not None
                and time.monotonic() - self._connected_at >= SETTLING_SECONDS
                and self._locked == self._worker_ids
            )

    def close(self) -> None:
        self._closed.set()
        self._thread.join()

    def _connect(self) -> psycopg.Connection[TupleRow]:
        connection = psycopg.connect(
            self._database_url,
            autocommit=True,
            application_name="batchgate-listener",
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            # A connection that silently died (a peer gone, no reset) is noticed within ~25 s.
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
        if connection.info.server_version >= IDLE_SESSION_TIMEOUT_SINCE:
            # Idle is what this connection is for: a database that ends idle sessions (as
            # managed ones often do) would otherwise end it, and the engine's lock with it.
            connection.execute("SET idle_session_timeout = 0")
        connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
        with self._state:
            self._connected_at = time.monotonic()
        return connection

    def _listen(self, connection: psycopg.Connection[TupleRow] | None) -> None:
        while not self._closed.is_set():
            if connection is None:
                connection = self._reconnect()
                continue
            try:
                self._take_locks(connection)
                for notification in connection.notifies(timeout=LISTEN_CHECK_SECONDS):
                    self._wake(notification.payload)
            except psycopg.Error as error:
                log.warning(
                    "lost the LISTEN connection, and the engine locks it held; reconnecting: %s",
                    _one_line(error),
                )
                with self._state:
                    self._locked.clear()
                    self._connected_at = None
                connection.close()
                connection = None
        if connection is not None:
            connection.close()

    def _take_locks(self, connection: psycopg.Connection[TupleRow]) -> None:
        with self._state:
            new = self._worker_ids - self._locked
        for worker_id in new:
            connection.execute(
                "SELECT pg_advisory_lock_shared(%s, hashtext(%s))", (ENGINE_LOCK_CLASS, worker_id)
            )
        if new:
            with self._state:
                self._locked |= new
                self._state.notify_all()

    def _reconnect(self) -> psycopg.Connection[TupleRow] | None:
        attempt = 0
        while not self._closed.wait(RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)]):
            attempt += 1
            try:
                connection = self._connect()
            except psycopg.Error as error:
                if attempt == 1:
                    log.warning("cannot reconnect to LISTEN yet, retrying: %s", _one_line(error))
                continue
            self._wake("")
            return connection
        return None

    def _wake(self, payload: str) -> None:
        for callback in list(self._callbacks):
            try:
                callback(payload)
            except Exception:
                log.exception("work callback failed")


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
