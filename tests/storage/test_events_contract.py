"""The events and webhooks storage contract: every test runs on SQLite and on PostgreSQL.

Events commit with the state change that causes them; each matching endpoint gets a delivery
row in the same transaction (the outbox); deliveries are leased to one engine at a time."""

import orjson

from batchgate.lifecycle.events import event_id
from batchgate.storage.base import (
    BatchEvent,
    BatchOptions,
    DeliveryOutcome,
    Store,
    TokenUsage,
    WebhookRow,
)
from storage.builders import DAY, LEASE, NOW, OWNER, create, part


def events(store: Store, owner: str = OWNER, batch_id: str | None = None) -> list[BatchEvent]:
    return store.events_after(owner, 0, batch_id, 1000)


def kinds(found: list[BatchEvent]) -> list[tuple[str, str]]:
    return [(event.batch_id, event.type) for event in found]


def webhook(store: Store, webhook_id: str, types: tuple[str, ...], owner: str = OWNER) -> None:
    store.create_webhook(
        WebhookRow(webhook_id, owner, f"https://example.com/{webhook_id}", types,
                   f"whsec_{webhook_id}", None, None, NOW)
    )  # fmt: skip


def test_a_batch_s_life_is_a_numbered_sequence_of_events(store: Store) -> None:
    create(store, "msgbatch_a", sizes=(2, 2))
    [first, second] = store.lease_chunks("w", 2, NOW, LEASE)
    usage = (("m", TokenUsage(1, 10, 5, 0, 0)),)
    # Parts a second apart give a progress event each; within the second, none.
    one = part(first, 0, [0])
    assert store.save_part("w", one.__class__(**{**_fields(one), "usage": usage}), NOW + 1)
    assert store.save_part("w", part(first, 1, [1], done=True), NOW + 1.5)
    assert store.save_part("w", part(second, 0, [0], "errored", done=False), NOW + 2.5)
    assert store.save_part("w", part(second, 1, [1], "errored", done=True), NOW + 2.6)
    found = events(store)
    assert [event.type for event in found] == [
        "batch.created", "batch.progress", "batch.progress", "batch.ended"
    ]  # fmt: skip
    assert [event.seq for event in found] == [1, 2, 3, 4]
    assert [event.number for event in found] == sorted({event.number for event in found})
    progress = orjson.loads(found[1].data)
    assert progress["request_counts"] == {
        "processing": 3, "succeeded": 1, "errored": 0, "canceled": 0, "expired": 0
    }  # fmt: skip
    assert progress["usage"]["input_tokens"] == 10
    ended = orjson.loads(found[-1].data)
    assert ended["processing_status"] == "ended" and ended["reason"] == "completed"
    assert ended["request_counts"]["errored"] == 2 and ended["ended_at"] is not None
    assert event_id("msgbatch_a", 4) == "evt_a_4"


def _fields(value: object) -> dict[str, object]:
    return {name: getattr(value, name) for name in value.__slots__}  # type: ignore[attr-defined]


def test_cancel_expiry_archive_and_delete_are_events_with_their_reasons(store: Store) -> None:
    create(store, "msgbatch_c")
    create(store, "msgbatch_x", expires_at=NOW + 1)
    store.cancel_batch(OWNER, "msgbatch_c", NOW + 1, {"type": "user"})
    store.cancel_batch(OWNER, "msgbatch_c", NOW + 1, {"type": "user"})  # no second event
    for chunk in store.lease_chunks("w", 2, NOW + 2, LEASE):
        outcome = "canceled" if chunk.batch_id == "msgbatch_c" else "expired"
        assert store.save_part("w", part(chunk, 0, [0, 1], outcome, done=True), NOW + 2)
    store.archive_older_than(NOW + DAY, NOW + 3)
    assert store.delete_batch(OWNER, "msgbatch_x")
    found = events(store)
    # Each batch's events in the order of their changes (the two ends in the engine's order).
    for batch_id, expected in (
        ("msgbatch_c", ["batch.created", "batch.canceling", "batch.ended", "batch.archived"]),
        ("msgbatch_x", ["batch.created", "batch.ended", "batch.archived", "batch.deleted"]),
    ):
        assert [e.type for e in found if e.batch_id == batch_id] == expected
    by_type = {(e.batch_id, e.type): orjson.loads(e.data) for e in found}
    assert by_type[("msgbatch_c", "batch.canceling")]["cancel_reason"] == {"type": "user"}
    assert by_type[("msgbatch_c", "batch.ended")]["reason"] == "canceled"
    assert by_type[("msgbatch_x", "batch.ended")]["reason"] == "expired"
    assert by_type[("msgbatch_x", "batch.deleted")]["processing_status"] == "deleted"
    assert len(found) == 8


def test_events_are_read_after_a_number_per_workspace_or_batch(store: Store) -> None:
    create(store, "msgbatch_1")
    create(store, "msgbatch_2")
    create(store, "msgbatch_b", owner="bob")
    mine = events(store)
    assert kinds(mine) == [("msgbatch_1", "batch.created"), ("msgbatch_2", "batch.created")]
    assert store.events_after(OWNER, mine[0].number, None, 10) == mine[1:]
    assert store.events_after(OWNER, 0, "msgbatch_2", 10) == mine[1:]
    assert store.events_after(OWNER, 0, "msgbatch_b", 10) == []
    assert store.last_event_number(OWNER) == mine[-1].number
    assert store.last_event_number("nobody") == 0


def test_deliveries_are_written_with_their_events_for_matching_endpoints(store: Store) -> None:
    webhook(store, "wh_ended", ("batch.ended",))
    webhook(store, "wh_all", ("batch.created", "batch.ended"))
    webhook(store, "wh_bob", ("batch.created",), owner="bob")
    secret = store.workspace_webhook_secret(OWNER, "whsec_default")
    assert store.workspace_webhook_secret(OWNER, "whsec_other") == secret == "whsec_default"
    create(store, "msgbatch_w", options=BatchOptions(webhook_url="https://example.com/own"))
    leased = store.lease_deliveries("engine-1", 10, NOW, 60)
    assert sorted((d.delivery.webhook_id or "", d.event.type) for d in leased) == [
        ("", "batch.created"), ("wh_all", "batch.created")
    ]  # fmt: skip
    own = next(d for d in leased if d.delivery.webhook_id is None)
    assert own.delivery.url == "https://example.com/own" and own.secrets == ("whsec_default",)
    # Leased: no other engine gets them until the lease lapses.
    assert store.lease_deliveries("engine-2", 10, NOW + 1, 60) == []
    attempt = {"at": NOW + 1, "status_code": 503, "latency_ms": 3.0}
    retry = DeliveryOutcome(attempt, "pending", NOW + 6)
    assert store.finish_attempt("engine-1", own.delivery.id, retry)
    assert not store.finish_attempt("engine-2", own.delivery.id, retry)
    done = DeliveryOutcome({"at": NOW + 1, "status_code": 200}, "delivered")
    other = next(d for d in leased if d.delivery.webhook_id == "wh_all")
    assert store.finish_attempt("engine-1", other.delivery.id, done)
    assert store.lease_deliveries("engine-2", 10, NOW + 5, 60) == []
    [again] = store.lease_deliveries("engine-2", 10, NOW + 6, 60)
    assert again.delivery.attempts == 1 and again.delivery.attempt_log == (attempt,)
    [logged] = store.deliveries(OWNER, "wh_all", 10, None)
    assert logged.state == "delivered" and logged.delivered_at == NOW + 1
    assert store.deliveries("bob", "wh_all", 10, None) == []
    assert store.redeliver(OWNER, "wh_all", logged.id, NOW + 7)
    assert not store.redeliver("bob", "wh_all", logged.id, NOW + 7)
    [redelivered] = store.lease_deliveries("engine-2", 10, NOW + 7, 60)
    assert redelivered.delivery.id == logged.id


def test_a_410_disables_the_endpoint_and_its_pending_deliveries(store: Store) -> None:
    webhook(store, "wh_gone", ("batch.created",))
    create(store, "msgbatch_1")
    create(store, "msgbatch_2")
    first, _ = store.lease_deliveries("e", 1, NOW, 60), None
    gone = DeliveryOutcome({"at": NOW, "status_code": 410}, "failed", None, "410 Gone")
    assert store.finish_attempt("e", first[0].delivery.id, gone)
    [disabled] = store.webhooks(OWNER)
    assert disabled.disabled_at == NOW and disabled.disabled_reason == "410 Gone"
    assert store.lease_deliveries("e", 10, NOW + 1, 60) == []
    create(store, "msgbatch_3")
    assert store.lease_deliveries("e", 10, NOW + 1, 60) == []


def test_rotating_a_secret_signs_with_both_until_the_old_one_lapses(store: Store) -> None:
    webhook(store, "wh_r", ("batch.created",))
    rotated = store.rotate_webhook_secret(OWNER, "wh_r", "whsec_new", NOW + DAY)
    assert rotated is not None and rotated.secret == "whsec_new"
    assert rotated.previous_secret == "whsec_wh_r"
    assert store.rotate_webhook_secret("bob", "wh_r", "whsec_x", NOW) is None
    create(store, "msgbatch_1")
    [leased] = store.lease_deliveries("e", 10, NOW, 60)
    assert leased.secrets == ("whsec_new", "whsec_wh_r")
    # A day on (the first lease lapsed meanwhile): the new secret alone.
    later = store.lease_deliveries("e", 10, NOW + DAY + 1, 60)
    assert [leased.secrets for leased in later] == [("whsec_new",)]
    assert not store.delete_webhook("bob", "wh_r")
    assert store.delete_webhook(OWNER, "wh_r")
    assert store.webhooks(OWNER) == [] and store.deliveries(OWNER, "wh_r", 10, None) == []


def test_a_counted_part_writes_no_event_twice(store: Store) -> None:
    create(store, "msgbatch_p")
    [chunk] = store.lease_chunks("w", 1, NOW, LEASE)
    again = part(chunk, 0, [0, 1], done=True)
    assert store.save_part("w", again, NOW + 2)
    assert store.save_part("w", again, NOW + 3)
    assert [e.type for e in events(store)] == ["batch.created", "batch.ended"]


def test_old_events_are_forgotten_but_not_while_a_delivery_needs_them(store: Store) -> None:
    webhook(store, "wh_e", ("batch.ended",))
    create(store, "msgbatch_old", sizes=(2, 2))
    first, second = store.lease_chunks("w", 2, NOW, LEASE)
    assert store.save_part("w", part(first, 0, [0, 1], done=True), NOW + 2)
    assert store.save_part("w", part(second, 0, [0, 1], done=True), NOW + 4)
    [delivery] = store.lease_deliveries("e", 10, NOW + 4, 60)
    assert [e.type for e in events(store)] == ["batch.created", "batch.progress", "batch.ended"]
    # A day on, progress is forgotten; the rest stays until the retention.
    assert store.forget_events(NOW + 10, NOW - 1) == 1
    assert [e.type for e in events(store)] == ["batch.created", "batch.ended"]
    # Past the retention: all but the ended event, whose delivery is pending.
    assert store.forget_events(NOW + 10, NOW + 10) == 1
    assert [e.type for e in events(store)] == ["batch.ended"]
    done = DeliveryOutcome({"at": NOW + 5, "status_code": 200}, "delivered")
    assert store.finish_attempt("e", delivery.delivery.id, done)
    assert store.forget_events(NOW + 10, NOW + 10) == 1
    assert events(store) == [] and store.deliveries(OWNER, "wh_e", 10, None) == []


def test_a_batch_s_deliveries_to_every_endpoint_are_listed_newest_first(store: Store) -> None:
    webhook(store, "wh_all", ("batch.created", "batch.canceling"))
    webhook(store, "wh_bob", ("batch.created",), owner="bob")
    create(store, "msgbatch_d", options=BatchOptions(webhook_url="https://example.com/own"))
    create(store, "msgbatch_other")
    create(store, "msgbatch_bob", owner="bob")
    store.cancel_batch(OWNER, "msgbatch_d", NOW + 1, {"type": "user"})
    listed = store.batch_deliveries(OWNER, "msgbatch_d", 10)
    types = {event.number: event.type for event in events(store, batch_id="msgbatch_d")}
    assert [types[d.event_number] for d in listed] == ["batch.canceling"] * 2 + [
        "batch.created"
    ] * 2
    assert [d.id for d in listed] == sorted((d.id for d in listed), reverse=True)
    assert {d.webhook_id for d in listed} == {None, "wh_all"}
    assert len(store.batch_deliveries(OWNER, "msgbatch_d", 3)) == 3
    assert store.batch_deliveries("bob", "msgbatch_d", 10) == []
    assert len(store.batch_deliveries("bob", "msgbatch_bob", 10)) == 1
