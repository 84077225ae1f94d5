"""The webhook delivery's rules: payload, signatures, the retry schedule, the addresses it may
reach (against a receiver on loopback)."""

import asyncio
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import orjson
import pytest
from standardwebhooks import Webhook

from batchgate.config.settings import Settings
from batchgate.engine.outages import Outages
from batchgate.engine.webhook_delivery import (
    RETRY_DELAYS_SECONDS,
    WebhookDelivery,
    payload,
    refuse_private_literal,
    retry_after_seconds,
    signed_headers,
    webhook_session,
)
from batchgate.service.webhooks import WebhookRefused
from batchgate.storage.base import BatchEvent, DeliveryRow, LeasedDelivery

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_dGhlIG9sZCBzZWNyZXQgb2YgdGhpcyBlbmRwb2ludA=="


def leased(attempts: int = 0, secrets: tuple[str, ...] = (SECRET,)) -> LeasedDelivery:
    event = BatchEvent(
        7, "msgbatch_abc", 3, "batch.ended", 1_800_000_000.0,
        orjson.dumps({"id": "msgbatch_abc", "processing_status": "ended"}),
    )  # fmt: skip
    delivery = DeliveryRow(
        1, "alice", "wh_1", "https://example.com/hook", 7, "pending", attempts, 0.0, (), 0.0, None
    )
    return LeasedDelivery(delivery, event, secrets)


def test_the_payload_is_thin_and_both_secrets_sign_after_a_rotation() -> None:
    delivery = leased(secrets=(SECRET, OLD_SECRET))
    body = payload(delivery)
    assert orjson.loads(body) == {
        "type": "batch.ended",
        "timestamp": "2027-01-15T08:00:00.000000Z",
        "data": {"id": "msgbatch_abc", "processing_status": "ended"},
    }
    headers = signed_headers(delivery, body, datetime.now(UTC))
    assert headers["webhook-id"] == "evt_abc_3"
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, OLD_SECRET):
        assert Webhook(secret).verify(body, headers)["type"] == "batch.ended"
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "QUFB" * 8).verify(body, headers)


def test_retries_follow_the_schedule_scaled_jittered_and_after_retry_after() -> None:
    engine = WebhookDelivery(
        None,  # type: ignore[arg-type]
        Settings(webhook_retry_scale=0.5),
        "w",
        Outages(),
    )
    for attempts, base in enumerate(RETRY_DELAYS_SECONDS):
        outcome = engine._retry_or_fail(leased(attempts), {"at": 100.0}, None)
        assert outcome.state == "pending" and outcome.next_attempt_at is not None
        assert 0.8 * base * 0.5 <= outcome.next_attempt_at - 100.0 <= 1.2 * base * 0.5
    assert sum(RETRY_DELAYS_SECONDS) / 86_400 == pytest.approx(3.15, abs=0.01)
    waited = engine._retry_or_fail(leased(0), {"at": 100.0}, 60.0)
    assert waited.next_attempt_at == 160.0
    last = engine._retry_or_fail(leased(len(RETRY_DELAYS_SECONDS)), {"at": 100.0}, None)
    assert last.state == "failed" and last.next_attempt_at is None


def test_retry_after_is_seconds_or_a_date_and_nonsense_is_ignored() -> None:
    assert retry_after_seconds("30") == 30.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    in_a_minute = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    seconds = retry_after_seconds(in_a_minute)
    assert seconds is not None and 55 <= seconds <= 61


async def _post_through_session(allow_private: bool, port: int) -> int:
    url = f"http://rebound.example:{port}/hook"
    async with webhook_session(allow_private) as session, session.post(url, data=b"{}") as answer:
        return answer.status


def test_a_name_that_resolves_into_the_server_s_network_is_refused_at_connect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check is on the addresses the connection is made to: a name that passed when the
    webhook was made and resolves to loopback later (DNS rebinding) reaches nothing."""
    received: list[bytes] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["content-length"])))
            self.send_response(204)
            self.end_headers()

    receiver = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    real_getaddrinfo = socket.getaddrinfo

    def rebound(host: str, *args: Any, **kwargs: Any) -> Any:
        return real_getaddrinfo("127.0.0.1" if host == "rebound.example" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    port = receiver.server_address[1]
    try:
        with pytest.raises(WebhookRefused, match=r"rebound\.example resolves to 127\.0\.0\.1"):
            asyncio.run(_post_through_session(False, port))
        assert received == []
        # Allowed, the same name reaches the receiver: the resolver used is the one checked.
        assert asyncio.run(_post_through_session(True, port)) == 204
        assert received == [b"{}"]
    finally:
        receiver.shutdown()


def test_an_address_in_the_url_is_checked_without_resolving() -> None:
    for url in ("http://127.0.0.1:8080/hook", "https://[::1]/hook", "http://169.254.169.254/"):
        with pytest.raises(WebhookRefused, match="private"):
            refuse_private_literal(url)
    refuse_private_literal("https://93.184.216.34/hook")
    refuse_private_literal("https://hooks.example.com/hook")  # a name: checked when resolved
