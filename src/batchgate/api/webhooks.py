"""The webhook endpoints of a workspace and their delivery log (docs/events.md)."""

import contextlib
from collections.abc import Iterator
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchgate.api.batches import acting_context, context, json_response
from batchgate.api.errors import ApiError
from batchgate.lifecycle.events import timestamp
from batchgate.service.webhooks import WebhookNotFound, WebhookRefused
from batchgate.storage.base import DeliveryRow, WebhookRow

MAX_BODY_BYTES = 64 * 1024
DELIVERY_PREFIX = "whdlv_"


class NewWebhook(msgspec.Struct, forbid_unknown_fields=True):
    url: str
    event_types: list[str]


@contextlib.contextmanager
def _as_api_errors() -> Iterator[None]:
    try:
        yield
    except WebhookRefused as error:
        raise ApiError(400, str(error)) from None
    except WebhookNotFound as error:
        raise ApiError(404, str(error)) from None


def webhook_object(webhook: WebhookRow, with_secret: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": webhook.id,
        "type": "webhook_endpoint",
        "url": webhook.url,
        "event_types": list(webhook.event_types),
        "created_at": timestamp(webhook.created_at),
        "disabled_at": timestamp(webhook.disabled_at),
        "disabled_reason": webhook.disabled_reason,
    }
    if with_secret:
        body["secret"] = webhook.secret
    return body


def delivery_object(delivery: DeliveryRow) -> dict[str, Any]:
    return {
        "id": f"{DELIVERY_PREFIX}{delivery.id}",
        "type": "webhook_delivery",
        "webhook_id": delivery.webhook_id,
        "event_number": delivery.event_number,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "next_attempt_at": timestamp(delivery.next_attempt_at)
        if delivery.state == "pending"
        else None,
        "created_at": timestamp(delivery.created_at),
        "delivered_at": timestamp(delivery.delivered_at),
        "attempt_log": [
            {**attempt, "at": timestamp(attempt.get("at"))} for attempt in delivery.attempt_log
        ],
    }


async def create_webhook(request: Request) -> Response:
    state, owner = await acting_context(request)
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, f"A webhook's body is at most {MAX_BODY_BYTES} bytes.")
    try:
        new = msgspec.json.decode(body, type=NewWebhook)
    except msgspec.DecodeError as error:
        raise ApiError(400, f"Invalid webhook: {error}") from None
    with _as_api_errors():
        webhook = await state.webhooks.create(owner, new.url, new.event_types)
    return json_response(webhook_object(webhook, with_secret=True))


async def list_webhooks(request: Request) -> Response:
    state, owner = await context(request)
    webhooks = await state.webhooks.of_workspace(owner)
    return json_response({"data": [webhook_object(webhook) for webhook in webhooks]})


async def delete_webhook(request: Request) -> Response:
    state, owner = await acting_context(request)
    webhook_id = request.path_params["webhook_id"]
    with _as_api_errors():
        await state.webhooks.delete(owner, webhook_id)
    return json_response({"id": webhook_id, "type": "webhook_endpoint_deleted"})


async def rotate_secret(request: Request) -> Response:
    state, owner = await acting_context(request)
    with _as_api_errors():
        webhook = await state.webhooks.rotate_secret(owner, request.path_params["webhook_id"])
    return json_response(webhook_object(webhook, with_secret=True))


async def workspace_secret(request: Request) -> Response:
    state, owner = await acting_context(request)
    secret = await state.webhooks.workspace_secret(owner)
    return json_response({"type": "webhook_secret", "secret": secret})


def _delivery_number(raw: str | None, what: str) -> int | None:
    if raw is None:
        return None
    number = raw.removeprefix(DELIVERY_PREFIX)
    if not number.isascii() or not number.isdigit() or len(number) > 18:
        raise ApiError(404 if what == "path" else 400, f"No delivery with id {raw!r}.")
    return int(number)


async def list_deliveries(request: Request) -> Response:
    state, owner = await context(request)
    raw_limit = request.query_params.get("limit", "20")
    if not raw_limit.isascii() or not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
        raise ApiError(400, "limit: an integer from 1 to 1000")
    before = _delivery_number(request.query_params.get("before_id"), "query")
    with _as_api_errors():
        deliveries = await state.webhooks.deliveries(
            owner, request.path_params["webhook_id"], int(raw_limit), before
        )
    return json_response(
        {
            "data": [delivery_object(delivery) for delivery in deliveries],
            "last_id": f"{DELIVERY_PREFIX}{deliveries[-1].id}" if deliveries else None,
        }
    )


async def redeliver(request: Request) -> Response:
    state, owner = await acting_context(request)
    webhook_id = request.path_params["webhook_id"]
    delivery_id = _delivery_number(request.path_params["delivery_id"], "path")
    assert delivery_id is not None
    with _as_api_errors():
        await state.webhooks.redeliver(owner, webhook_id, delivery_id)
    return json_response(
        {"id": f"{DELIVERY_PREFIX}{delivery_id}", "type": "webhook_delivery", "state": "pending"}
    )


routes = [
    Route("/v1/webhooks", create_webhook, methods=["POST"]),
    Route("/v1/webhooks", list_webhooks, methods=["GET"]),
    Route("/v1/webhooks/workspace_secret", workspace_secret, methods=["POST"]),
    Route("/v1/webhooks/{webhook_id}", delete_webhook, methods=["DELETE"]),
    Route("/v1/webhooks/{webhook_id}/rotate_secret", rotate_secret, methods=["POST"]),
    Route("/v1/webhooks/{webhook_id}/deliveries", list_deliveries, methods=["GET"]),
    Route(
        "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
        redeliver,
        methods=["POST"],
    ),
]
