"""Webhook deliveries, at least once (docs/events.md): the engine leases due deliveries from the
outbox the stores write with each event, posts each signed by Standard Webhooks' rules, and
records the attempt. On PostgreSQL any engine may take any delivery, one at a time.

A 2xx delivers; a timeout, 429, 5xx or a failed connection is tried again on the spec's schedule
(jittered, compressed by webhook_retry_scale, never sooner than Retry-After); a 410 disables the
endpoint; any other answer (a redirect, which is never followed, or a 4xx) fails the delivery.
"""

import asyncio
import contextlib
import email.utils
import ipaddress
import logging
import random
import socket
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import aiohttp.abc
import orjson
from standardwebhooks import Webhook

from batchgate.config.settings import Settings
from batchgate.engine.outages import Outages
from batchgate.lifecycle.events import event_id, is_openai, timestamp
from batchgate.observability import metrics
from batchgate.service.webhooks import WebhookRefused, check_url_form, refuse_private
from batchgate.storage.base import DeliveryOutcome, LeasedDelivery, Store

log = logging.getLogger("batchgate.webhooks")

# Standard Webhooks' schedule after the first attempt: about three days in all.
RETRY_DELAYS_SECONDS = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
JITTER = 0.2
TIMEOUT_SECONDS = 10.0
# Longer than an attempt can take, so that no other engine takes a delivery being attempted.
LEASE_SECONDS = 60.0
# Of an endpoint's answer, only this much is read (and kept in the log, shortened).
MAX_RESPONSE_BYTES = 4096
LOGGED_RESPONSE_CHARS = 200
MAX_IN_FLIGHT = 32
# Without a wake-up (an event written), due retries are looked for this often.
POLL_SECONDS = 0.5
MAX_RETRY_AFTER_SECONDS = 86_400.0


def payload(leased: LeasedDelivery) -> bytes:
    """The thin payload: type, timestamp and the batch's ids, status and counts; an OpenAI
    batch's event as OpenAI's webhooks send it, `{"id", "object", "type", "created_at", "data"}`."""
    event = leased.event
    if is_openai(event.batch_id):
        return orjson.dumps(
            {
                "id": event_id(event.batch_id, event.seq),
                "object": "event",
                "type": event.type,
                "created_at": int(event.created_at),
                "data": orjson.Fragment(event.data),
            }
        )
    head = b'{"type":"%s","timestamp":"%s","data":' % (
        event.type.encode(),
        (timestamp(event.created_at) or "").encode(),
    )
    return head + event.data + b"}"


def signed_headers(leased: LeasedDelivery, body: bytes, now: datetime) -> dict[str, str]:
    msg_id = event_id(leased.event.batch_id, leased.event.seq)
    signatures = " ".join(Webhook(secret).sign(msg_id, now, body) for secret in leased.secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": "batchgate-webhooks",
    }


def retry_after_seconds(value: str | None) -> float | None:
    if value is None:
        return None
    if value.strip().isdigit():
        return min(float(value.strip()), MAX_RETRY_AFTER_SECONDS)
    try:
        with_date = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # neither seconds nor a date: the schedule alone decides
    return min(max(0.0, with_date.timestamp() - time.time()), MAX_RETRY_AFTER_SECONDS)


class PublicAddressesOnly(aiohttp.abc.AbstractResolver):
    """Resolves as aiohttp does, refusing a name with any loopback, link-local or private
    address. The addresses checked are the very ones connected to, so a name cannot pass a
    check and then resolve into the server's own network for the connection (DNS rebinding)."""

    def __init__(self) -> None:
        self._resolver = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        refuse_private(host, [result["host"] for result in results])
        return results

    async def close(self) -> None:
        await self._resolver.close()


def refuse_private_literal(url: str) -> None:
    """A URL's host that is an address is connected to without resolving: checked here."""
    host, _ = check_url_form(url)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return  # a name: PublicAddressesOnly checks what it resolves to
    refuse_private(host, [str(address)])


def webhook_session(allow_private_addresses: bool) -> aiohttp.ClientSession:
    """The client deliveries are posted with: redirects and proxies are never followed, and an
    answer is read as it came (never decompressed)."""
    resolver = None if allow_private_addresses else PublicAddressesOnly()
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=MAX_IN_FLIGHT, resolver=resolver),
        timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
        auto_decompress=False,
        trust_env=False,
    )


class WebhookDelivery:
    def __init__(self, store: Store, settings: Settings, worker_id: str, outages: Outages) -> None:
        self._store = store
        self._settings = settings
        self._worker_id = worker_id
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._outages = outages
        self.stopping = False

    def stop(self) -> None:
        self.stopping = True
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        await self._outages.retry(
            self._store.on_events_written, lambda _: loop.call_soon_threadsafe(self._wake.set)
        )
        async with webhook_session(self._settings.webhook_allow_private_addresses) as client:
            try:
                while not self.stopping:
                    self._wake.clear()
                    try:
                        if await self._start_due(client):
                            continue
                    except Exception:
                        # A bug here must not stop the engine's requests: logged, tried again.
                        log.exception("leasing webhook deliveries failed")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            finally:
                # What is in flight finishes (10 s at most); an attempt cut short is leased
                # again, since its lease lapses (or the SQLite file is opened again).
                if self._in_flight:
                    await asyncio.wait(self._in_flight, timeout=TIMEOUT_SECONDS + 1)

    async def _start_due(self, client: aiohttp.ClientSession) -> bool:
        """Starts attempts of the due deliveries it has room for; True if room ran out."""
        room = MAX_IN_FLIGHT - len(self._in_flight)
        if room <= 0:
            # Each attempt that ends wakes the loop.
            return False
        leased = await self._outages.retry(
            self._store.lease_deliveries, self._worker_id, room, time.time(), LEASE_SECONDS
        )
        for delivery in leased:
            task = asyncio.create_task(self._attempt(client, delivery))
            self._in_flight.add(task)
            task.add_done_callback(self._done)
        return len(leased) == room

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery failed", exc_info=task.exception())
        self._wake.set()

    async def _attempt(self, client: aiohttp.ClientSession, leased: LeasedDelivery) -> None:
        outcome = await self._post(client, leased)
        metrics.WEBHOOK_ATTEMPTS.labels(
            "retry" if outcome.state == "pending" else outcome.state
        ).inc()
        await self._outages.retry(
            self._store.finish_attempt, self._worker_id, leased.delivery.id, outcome
        )

    async def _post(self, client: aiohttp.ClientSession, leased: LeasedDelivery) -> DeliveryOutcome:
        now = time.time()
        attempt: dict[str, Any] = {"at": now}
        url = leased.delivery.url
        started = time.monotonic()
        try:
            if not self._settings.webhook_allow_private_addresses:
                refuse_private_literal(url)
            body = payload(leased)
            headers = signed_headers(leased, body, datetime.fromtimestamp(now, UTC))
            async with client.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                answer = await _read_capped(response)
        except WebhookRefused as error:
            attempt["error"] = str(error)
            return self._retry_or_fail(leased, attempt, None)
        except TimeoutError:
            attempt["error"] = f"timed out after {TIMEOUT_SECONDS:g} s"
            return self._retry_or_fail(leased, attempt, None)
        except aiohttp.ClientError as error:
            attempt["error"] = f"{type(error).__name__}: {error}"[:LOGGED_RESPONSE_CHARS]
            return self._retry_or_fail(leased, attempt, None)
        attempt["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
        status = response.status
        attempt["status_code"] = status
        if answer:
            attempt["response"] = answer[:LOGGED_RESPONSE_CHARS]
        if 200 <= status < 300:
            return DeliveryOutcome(attempt, "delivered")
        if status == 410:
            log.warning(
                "webhook endpoint gone (410), disabled", extra={"host": urlsplit(url).hostname}
            )
            return DeliveryOutcome(attempt, "failed", None, "the endpoint answered 410 Gone")
        if status == 429 or status >= 500:
            return self._retry_or_fail(
                leased, attempt, retry_after_seconds(response.headers.get("retry-after"))
            )
        return DeliveryOutcome(attempt, "failed")

    def _retry_or_fail(
        self, leased: LeasedDelivery, attempt: dict[str, Any], retry_after: float | None
    ) -> DeliveryOutcome:
        done = leased.delivery.attempts  # before this one
        if done >= len(RETRY_DELAYS_SECONDS):
            return DeliveryOutcome(attempt, "failed")
        delay = RETRY_DELAYS_SECONDS[done] * self._settings.webhook_retry_scale
        delay *= 1 + random.uniform(-JITTER, JITTER)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return DeliveryOutcome(attempt, "pending", attempt["at"] + delay)


async def _read_capped(response: aiohttp.ClientResponse) -> str:
    read = bytearray()
    async for chunk in response.content.iter_any():
        read += chunk
        if len(read) >= MAX_RESPONSE_BYTES:
            break
    return bytes(read[:MAX_RESPONSE_BYTES]).decode("utf-8", "replace")
