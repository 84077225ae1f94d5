"""The SQL of events and webhooks, shared by both stores: each passes its connection (sqlite3
or psycopg, both `execute(query, params)`) and its placeholder.

Writing an event is the outbox: the event row and a delivery row for each endpoint it goes to
commit in the caller's transaction, the one that changes the batch. The stores add what only
they need: PostgreSQL numbers a workspace's events in commit order under a lock per workspace
and NOTIFYs; SQLite has one writer and calls back in process.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from batchgate.lifecycle.events import (
    OPENAI_FAILED,
    PROGRESS,
    PROGRESS_INTERVAL_SECONDS,
    has_event,
    openai_data,
    stored_event,
)
from batchgate.storage.base import (
    BatchEvent,
    BatchRow,
    DeliveryOutcome,
    DeliveryRow,
    LeasedDelivery,
    WebhookRow,
)

EVENT_COLUMNS = "id, batch_id, seq, type, created_at, data"
WEBHOOK_COLUMNS = (
    "id, owner, url, event_types, secret, previous_secret, previous_secret_until, created_at,"
    " disabled_at, disabled_reason"
)
DELIVERY_COLUMNS = (
    "id, owner, webhook_id, url, event_id, state, attempts, next_attempt_at, attempt_log,"
    " created_at, delivered_at"
)
# The delivery log keeps this many attempts of each delivery, the latest.
ATTEMPTS_KEPT = 20


def batch_event(row: tuple[Any, ...]) -> BatchEvent:
    number, batch_id, seq, event_type, created_at, data = row
    return BatchEvent(number, batch_id, seq, event_type, created_at, bytes(data, "utf-8"))


def webhook_row(row: tuple[Any, ...]) -> WebhookRow:
    return WebhookRow(row[0], row[1], row[2], tuple(orjson.loads(row[3])), *row[4:])


def delivery_row(row: tuple[Any, ...]) -> DeliveryRow:
    *head, attempt_log, created_at, delivered_at = row
    return DeliveryRow(  # type: ignore[call-arg]  # the first 8 columns are its first 8 fields
        *head, tuple(orjson.loads(attempt_log)), created_at, delivered_at
    )


@dataclass(frozen=True)
class EventTables:
    """The queries, with the store's placeholder `mark` and, on PostgreSQL, the clause that
    lets engines lease deliveries side by side (FOR UPDATE SKIP LOCKED)."""

    mark: str
    skip_locked: str = ""

    def _q(self, query: str) -> str:
        return query.replace("?", self.mark)

    # --- writing events, in the caller's transaction -------------------------------------

    def progress_due(self, db: Any, batch_id: str, now: float) -> bool:
        """Whether a batch.progress may be written now: the batch's latest event is a second old."""
        if not has_event(batch_id, PROGRESS):
            return False
        # The latest by the batch's own index: one lookup however many events it has.
        row = db.execute(
            self._q(
                "SELECT created_at FROM batch_events WHERE batch_id = ? ORDER BY seq DESC LIMIT 1"
            ),
            (batch_id,),
        ).fetchone()
        return row is None or row[0] <= now - PROGRESS_INTERVAL_SECONDS

    def write(self, db: Any, owner: str, batch: BatchRow, event_type: str, now: float) -> None:
        """Writes the event of `batch` (as the change left it) and its deliveries, if it has one
        (lifecycle/events.py: an OpenAI batch has only OpenAI's)."""
        stored = stored_event(batch, event_type)
        if stored is not None:
            self._insert(db, owner, batch.id, *stored, now)

    def write_openai_failed(self, db: Any, owner: str, batch_id: str, now: float) -> None:
        """batch.failed of an OpenAI batch whose input file failed validation (it has no row)."""
        self._insert(db, owner, batch_id, OPENAI_FAILED, openai_data(batch_id), now)

    def _insert(
        self, db: Any, owner: str, batch_id: str, event_type: str, data: Any, now: float
    ) -> None:
        (last,) = db.execute(
            self._q("SELECT coalesce(max(seq), 0) FROM batch_events WHERE batch_id = ?"),
            (batch_id,),
        ).fetchone()
        [(number,)] = db.execute(
            self._q(
                "INSERT INTO batch_events (owner, batch_id, seq, type, created_at, data)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id"
            ),
            (owner, batch_id, last + 1, event_type, now, orjson.dumps(data).decode()),
        ).fetchall()
        db.execute(
            self._q(
                "INSERT INTO webhook_deliveries (owner, webhook_id, url, event_id, state,"
                " next_attempt_at, created_at)"
                " SELECT owner, id, url, ?, 'pending', ?, ? FROM webhooks"
                " WHERE owner = ? AND disabled_at IS NULL AND event_types LIKE ?"
            ),
            (number, now, now, owner, f'%"{event_type}"%'),
        )
        if event_type != PROGRESS:
            db.execute(
                self._q(
                    "INSERT INTO webhook_deliveries (owner, webhook_id, url, event_id, state,"
                    " next_attempt_at, created_at)"
                    " SELECT owner, NULL, webhook_url, ?, 'pending', ?, ? FROM batches"
                    " WHERE id = ? AND webhook_url IS NOT NULL"
                ),
                (number, now, now, batch_id),
            )

    # --- reading events -------------------------------------------------------------------

    def events_after(
        self, db: Any, owner: str, after: int, batch_id: str | None, limit: int
    ) -> list[BatchEvent]:
        if batch_id is None:
            query = f"SELECT {EVENT_COLUMNS} FROM batch_events WHERE owner = ? AND id > ?"
            params: tuple[Any, ...] = (owner, after)
        else:
            # By the batch's index: a batch's events are few beside its workspace's.
            query = (
                f"SELECT {EVENT_COLUMNS} FROM batch_events"
                " WHERE batch_id = ? AND owner = ? AND id > ?"
            )
            params = (batch_id, owner, after)
        rows = db.execute(self._q(query + " ORDER BY id LIMIT ?"), (*params, limit)).fetchall()
        return [batch_event(row) for row in rows]

    def last_number(self, db: Any, owner: str) -> int:
        (number,) = db.execute(
            self._q("SELECT coalesce(max(id), 0) FROM batch_events WHERE owner = ?"), (owner,)
        ).fetchone()
        return int(number)

    def forget(self, db: Any, progress_before: float, before: float, limit: int) -> int:
        """Deletes up to `limit` events: progress older than `progress_before`, any older than
        `before`; never one a pending delivery still needs. Then the finished deliveries older
        than `before`. Returns how many events."""
        rows = db.execute(
            self._q(
                "DELETE FROM batch_events WHERE id IN (SELECT e.id FROM batch_events e"
                "   WHERE e.created_at < ? AND (e.created_at < ? OR e.type = ?)"
                "   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d"
                "     WHERE d.event_id = e.id AND d.state = 'pending')"
                f"   LIMIT ? {self.skip_locked}) RETURNING id"
            ),
            (max(progress_before, before), before, PROGRESS, limit),
        ).fetchall()
        db.execute(
            self._q(
                "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries"
                f"   WHERE created_at < ? AND state <> 'pending' LIMIT ? {self.skip_locked})"
            ),
            (before, limit),
        )
        return len(rows)

    # --- webhooks ---------------------------------------------------------------------------

    def create_webhook(self, db: Any, webhook: WebhookRow) -> None:
        db.execute(
            self._q(
                f"INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            (
                webhook.id, webhook.owner, webhook.url, orjson.dumps(webhook.event_types).decode(),
                webhook.secret, webhook.previous_secret, webhook.previous_secret_until,
                webhook.created_at, webhook.disabled_at, webhook.disabled_reason,
            ),
        )  # fmt: skip

    def webhooks(self, db: Any, owner: str) -> list[WebhookRow]:
        rows = db.execute(
            self._q(
                f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE owner = ? ORDER BY created_at, id"
            ),
            (owner,),
        ).fetchall()
        return [webhook_row(row) for row in rows]

    def delete_webhook(self, db: Any, owner: str, webhook_id: str) -> bool:
        deleted = db.execute(
            self._q("DELETE FROM webhooks WHERE owner = ? AND id = ? RETURNING id"),
            (owner, webhook_id),
        ).fetchall()
        if deleted:
            db.execute(
                self._q("DELETE FROM webhook_deliveries WHERE webhook_id = ?"), (webhook_id,)
            )
        return bool(deleted)

    def rotate_secret(
        self, db: Any, owner: str, webhook_id: str, secret: str, previous_until: float
    ) -> WebhookRow | None:
        rows = db.execute(
            self._q(
                "UPDATE webhooks SET previous_secret = secret, previous_secret_until = ?,"
                f" secret = ? WHERE owner = ? AND id = ? RETURNING {WEBHOOK_COLUMNS}"
            ),
            (previous_until, secret, owner, webhook_id),
        ).fetchall()
        return webhook_row(rows[0]) if rows else None

    def workspace_secret(self, db: Any, owner: str, candidate: str) -> str:
        db.execute(
            self._q(
                "INSERT INTO webhook_secrets (owner, secret) VALUES (?, ?) ON CONFLICT DO NOTHING"
            ),
            (owner, candidate),
        )
        (secret,) = db.execute(
            self._q("SELECT secret FROM webhook_secrets WHERE owner = ?"), (owner,)
        ).fetchone()
        return str(secret)

    # --- deliveries -------------------------------------------------------------------------

    def deliveries(
        self, db: Any, owner: str, webhook_id: str, limit: int, before_id: int | None
    ) -> list[DeliveryRow]:
        rows = db.execute(
            self._q(
                f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries"
                " WHERE owner = ? AND webhook_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
            ),
            (owner, webhook_id, before_id if before_id is not None else 2**62, limit),
        ).fetchall()
        return [delivery_row(row) for row in rows]

    def batch_deliveries(self, db: Any, owner: str, batch_id: str, limit: int) -> list[DeliveryRow]:
        columns = ", ".join(f"d.{name.strip()}" for name in DELIVERY_COLUMNS.split(","))
        rows = db.execute(
            self._q(
                f"SELECT {columns} FROM batch_events e"
                " JOIN webhook_deliveries d ON d.event_id = e.id"
                " WHERE e.batch_id = ? AND e.owner = ? ORDER BY d.id DESC LIMIT ?"
            ),
            (batch_id, owner, limit),
        ).fetchall()
        return [delivery_row(row) for row in rows]

    def redeliver(self, db: Any, owner: str, webhook_id: str, delivery_id: int, now: float) -> bool:
        rows = db.execute(
            self._q(
                "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = ?,"
                " lease_owner = NULL, lease_expires = NULL"
                " WHERE owner = ? AND webhook_id = ? AND id = ? RETURNING id"
            ),
            (now, owner, webhook_id, delivery_id),
        ).fetchall()
        return bool(rows)

    def lease(
        self, db: Any, worker_id: str, limit: int, now: float, lease_seconds: float
    ) -> list[LeasedDelivery]:
        ids = [
            row[0]
            for row in db.execute(
                self._q(
                    "UPDATE webhook_deliveries SET lease_owner = ?, lease_expires = ?"
                    " WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending'"
                    "   AND next_attempt_at <= ? AND (lease_expires IS NULL OR lease_expires < ?)"
                    f"   ORDER BY next_attempt_at LIMIT ? {self.skip_locked})"
                    # Checked again on the row once locked: another engine may have leased it
                    # since the subquery's snapshot.
                    " AND state = 'pending' AND (lease_expires IS NULL OR lease_expires < ?)"
                    " RETURNING id"
                ),
                (worker_id, now + lease_seconds, now, now, limit, now),
            ).fetchall()
        ]
        leased = []
        for delivery_id in sorted(ids):
            delivery = delivery_row(
                db.execute(
                    self._q(f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = ?"),
                    (delivery_id,),
                ).fetchone()
            )
            event = db.execute(
                self._q(f"SELECT {EVENT_COLUMNS} FROM batch_events WHERE id = ?"),
                (delivery.event_number,),
            ).fetchone()
            if event is None:
                # Forgotten since (a redelivery of an old delivery): nothing left to send.
                db.execute(
                    self._q(
                        "UPDATE webhook_deliveries SET state = 'failed', next_attempt_at = NULL,"
                        " lease_owner = NULL, lease_expires = NULL WHERE id = ?"
                    ),
                    (delivery_id,),
                )
                continue
            leased.append(
                LeasedDelivery(delivery, batch_event(event), self._secrets(db, delivery, now))
            )
        return leased

    def _secrets(self, db: Any, delivery: DeliveryRow, now: float) -> tuple[str, ...]:
        if delivery.webhook_id is None:
            row = db.execute(
                self._q("SELECT secret FROM webhook_secrets WHERE owner = ?"), (delivery.owner,)
            ).fetchone()
            return () if row is None else (row[0],)
        row = db.execute(
            self._q(
                "SELECT secret, previous_secret, previous_secret_until FROM webhooks WHERE id = ?"
            ),
            (delivery.webhook_id,),
        ).fetchone()
        if row is None:
            return ()
        secret, previous, until = row
        return (secret, previous) if previous is not None and until > now else (secret,)

    def finish(self, db: Any, worker_id: str, delivery_id: int, outcome: DeliveryOutcome) -> bool:
        row = db.execute(
            self._q(
                "SELECT attempt_log, webhook_id FROM webhook_deliveries"
                f" WHERE id = ? AND lease_owner = ? {self.skip_locked.replace(' SKIP LOCKED', '')}"
            ),
            (delivery_id, worker_id),
        ).fetchone()
        if row is None:
            return False
        log = [*orjson.loads(row[0]), outcome.attempt][-ATTEMPTS_KEPT:]
        delivered = outcome.attempt.get("at") if outcome.state == "delivered" else None
        db.execute(
            self._q(
                "UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1,"
                " next_attempt_at = ?, lease_owner = NULL, lease_expires = NULL,"
                " attempt_log = ?, delivered_at = ? WHERE id = ?"
            ),
            (
                outcome.state, outcome.next_attempt_at, orjson.dumps(log).decode(), delivered,
                delivery_id,
            ),
        )  # fmt: skip
        if outcome.disable_webhook is not None and row[1] is not None:
            db.execute(
                self._q("UPDATE webhooks SET disabled_at = ?, disabled_reason = ? WHERE id = ?"),
                (outcome.attempt.get("at"), outcome.disable_webhook, row[1]),
            )
            db.execute(
                self._q(
                    "UPDATE webhook_deliveries SET state = 'failed', next_attempt_at = NULL"
                    " WHERE webhook_id = ? AND state = 'pending'"
                ),
                (row[1],),
            )
        return True


def owners_in_order(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(owner, batch_id) pairs sorted by owner: locks per workspace, always taken in one order."""
    return sorted(pairs)
