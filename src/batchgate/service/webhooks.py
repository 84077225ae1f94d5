"""Webhook endpoints of a workspace (docs/events.md): their secrets, the URLs they may have, the
delivery log. Deliveries themselves are the engine's (engine/webhook_delivery.py)."""

import asyncio
import base64
import ipaddress
import secrets
import socket
from collections.abc import Callable, Iterable, Sequence
from urllib.parse import urlsplit

import anyio.to_thread

from batchgate.config.settings import Settings
from batchgate.lifecycle.events import ALL_EVENT_TYPES
from batchgate.storage.base import DeliveryRow, Store, WebhookRow

# Old and new signatures are both sent this long after a rotation.
ROTATION_OVERLAP_SECONDS = 86_400.0
MAX_URL_LENGTH = 2048
MAX_WEBHOOKS_PER_WORKSPACE = 20
DNS_TIMEOUT_SECONDS = 5.0


class WebhookRefused(Exception):
    """A webhook the server will not call: a 400 on the wire, with this message."""


class WebhookNotFound(Exception):
    """No such endpoint (or delivery) in the caller's workspace: a 404."""


def new_secret() -> str:
    """Standard Webhooks' form: whsec_ and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_url_form(url: str) -> tuple[str, int]:
    """The host and port of an http(s) URL; WebhookRefused for anything else."""
    if len(url) > MAX_URL_LENGTH:
        raise WebhookRefused(f"url: at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise WebhookRefused(f"url: not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused("url: an http:// or https:// URL with a host is expected")
    if parts.username or parts.password:
        raise WebhookRefused("url: credentials in the URL are not accepted")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def refuse_private(host: str, addresses: Iterable[str]) -> None:
    """WebhookRefused if any of the addresses `host` resolved to is loopback, link-local or
    private: a webhook must not reach into the server's own network."""
    for address in addresses:
        if _private(address):
            raise WebhookRefused(
                f"url: {host} resolves to {address}, a loopback, link-local or private address;"
                " set webhook_allow_private_addresses to allow such webhooks"
            )


def check_resolves_public(host: str, port: int) -> None:
    """WebhookRefused unless every address `host` resolves to is public. Blocking: call it on a
    thread."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise WebhookRefused(f"url: the host {host!r} cannot be resolved ({error})") from None
    refuse_private(host, [str(info[4][0]) for info in infos])


async def check_url(url: str, settings: Settings) -> None:
    host, port = check_url_form(url)
    if not settings.webhook_allow_private_addresses:
        try:
            await asyncio.wait_for(
                anyio.to_thread.run_sync(check_resolves_public, host, port), DNS_TIMEOUT_SECONDS
            )
        except TimeoutError:
            raise WebhookRefused(
                f"url: the host {host!r} could not be resolved within {DNS_TIMEOUT_SECONDS:g} s"
            ) from None


def check_event_types(event_types: Sequence[str]) -> tuple[str, ...]:
    if not event_types:
        raise WebhookRefused(f"event_types: at least one of {', '.join(ALL_EVENT_TYPES)}")
    unknown = [name for name in event_types if name not in ALL_EVENT_TYPES]
    if unknown:
        raise WebhookRefused(
            f"event_types: unknown {unknown[0]!r}; the types are {', '.join(ALL_EVENT_TYPES)}"
        )
    return tuple(dict.fromkeys(event_types))


class WebhookService:
    def __init__(self, store: Store, settings: Settings, clock: Callable[[], float]) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock

    async def create(self, owner: str, url: str, event_types: Sequence[str]) -> WebhookRow:
        types = check_event_types(event_types)
        await check_url(url, self._settings)
        existing = await anyio.to_thread.run_sync(self._store.webhooks, owner)
        if len(existing) >= MAX_WEBHOOKS_PER_WORKSPACE:
            raise WebhookRefused(
                f"A workspace has at most {MAX_WEBHOOKS_PER_WORKSPACE} webhooks: delete one first."
            )
        webhook = WebhookRow(
            f"wh_{secrets.token_hex(12)}", owner, url, types, new_secret(), None, None,
            self._clock(),
        )  # fmt: skip
        await anyio.to_thread.run_sync(self._store.create_webhook, webhook)
        return webhook

    async def of_workspace(self, owner: str) -> list[WebhookRow]:
        return await anyio.to_thread.run_sync(self._store.webhooks, owner)

    async def delete(self, owner: str, webhook_id: str) -> None:
        if not await anyio.to_thread.run_sync(self._store.delete_webhook, owner, webhook_id):
            raise _not_found(webhook_id)

    async def rotate_secret(self, owner: str, webhook_id: str) -> WebhookRow:
        rotated = await anyio.to_thread.run_sync(
            self._store.rotate_webhook_secret,
            owner,
            webhook_id,
            new_secret(),
            self._clock() + ROTATION_OVERLAP_SECONDS,
        )
        if rotated is None:
            raise _not_found(webhook_id)
        return rotated

    async def workspace_secret(self, owner: str) -> str:
        """The secret that signs deliveries to batches' own webhook_url."""
        return await anyio.to_thread.run_sync(
            self._store.workspace_webhook_secret, owner, new_secret()
        )

    async def deliveries(
        self, owner: str, webhook_id: str, limit: int, before_id: int | None
    ) -> list[DeliveryRow]:
        await self._webhook(owner, webhook_id)
        return await anyio.to_thread.run_sync(
            self._store.deliveries, owner, webhook_id, limit, before_id
        )

    async def redeliver(self, owner: str, webhook_id: str, delivery_id: int) -> None:
        await self._webhook(owner, webhook_id)
        if not await anyio.to_thread.run_sync(
            self._store.redeliver, owner, webhook_id, delivery_id, self._clock()
        ):
            raise WebhookNotFound(f"No delivery {delivery_id} of webhook {webhook_id!r}.")

    async def _webhook(self, owner: str, webhook_id: str) -> WebhookRow:
        for webhook in await self.of_workspace(owner):
            if webhook.id == webhook_id:
                return webhook
        raise _not_found(webhook_id)


def _not_found(webhook_id: str) -> WebhookNotFound:
    return WebhookNotFound(f"No webhook with id {webhook_id!r}.")
