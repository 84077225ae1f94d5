"""The OpenAPI description of the event streams and webhooks (api/events.py, api/webhooks.py),
merged into /openapi.json by api/openapi.py."""

from typing import Any

from batchgate.lifecycle.events import ALL_EVENT_TYPES
from batchgate.service.webhooks import MAX_URL_LENGTH

_EXTENSION = "(batchgate extension) "
_TIMESTAMP = {"type": "string", "format": "date-time"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_WEBHOOK_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string", "examples": ["wh_5f0c6e2a9d1b4c7e8f3a2b1c"]},
    "type": {"const": "webhook_endpoint"},
    "url": {"type": "string"},
    "event_types": {"type": "array", "items": {"enum": list(ALL_EVENT_TYPES)}},
    "created_at": _TIMESTAMP,
    "disabled_at": {
        "description": "Set once the endpoint answered 410 Gone: nothing is sent to it since.",
        **_nullable(_TIMESTAMP),
    },
    "disabled_reason": _nullable({"type": "string"}),
}

SCHEMAS: dict[str, Any] = {
    "NewWebhook": {
        "type": "object",
        "additionalProperties": False,
        "required": ["url", "event_types"],
        "properties": {
            "url": {
                "description": (
                    "http(s); refused if it resolves to a loopback, link-local or private"
                    " address unless the server allows them (webhook_allow_private_addresses)."
                ),
                "type": "string",
                "maxLength": MAX_URL_LENGTH,
            },
            "event_types": {
                "type": "array",
                "minItems": 1,
                "items": {"enum": list(ALL_EVENT_TYPES)},
            },
        },
    },
    "Webhook": {
        "type": "object",
        "additionalProperties": False,
        "required": list(_WEBHOOK_PROPERTIES),
        "properties": _WEBHOOK_PROPERTIES,
    },
    "WebhookWithSecret": {
        "type": "object",
        "additionalProperties": False,
        "required": [*_WEBHOOK_PROPERTIES, "secret"],
        "properties": {
            **_WEBHOOK_PROPERTIES,
            "secret": {
                "description": "whsec_…: signs the deliveries; shown only here.",
                "type": "string",
            },
        },
    },
    "WebhookList": {
        "type": "object",
        "additionalProperties": False,
        "required": ["data"],
        "properties": {"data": {"type": "array", "items": _ref("Webhook")}},
    },
    "DeletedWebhook": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "type"],
        "properties": {"id": {"type": "string"}, "type": {"const": "webhook_endpoint_deleted"}},
    },
    "WebhookSecret": {
        "type": "object",
        "additionalProperties": False,
        "required": ["type", "secret"],
        "properties": {"type": {"const": "webhook_secret"}, "secret": {"type": "string"}},
    },
    "WebhookDelivery": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "id",
            "type",
            "webhook_id",
            "event_number",
            "state",
            "attempts",
            "next_attempt_at",
            "created_at",
            "delivered_at",
            "attempt_log",
        ],
        "properties": {
            "id": {"type": "string", "examples": ["whdlv_42"]},
            "type": {"const": "webhook_delivery"},
            "webhook_id": _nullable({"type": "string"}),
            "event_number": {"type": "integer"},
            "state": {"enum": ["pending", "delivered", "failed"]},
            "attempts": {"type": "integer", "minimum": 0},
            "next_attempt_at": _nullable(_TIMESTAMP),
            "created_at": _TIMESTAMP,
            "delivered_at": _nullable(_TIMESTAMP),
            "attempt_log": {
                "description": "The latest attempts, oldest first.",
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "at": _TIMESTAMP,
                        "status_code": {"type": "integer"},
                        "latency_ms": {"type": "number"},
                        "error": {"type": "string"},
                        "response": {"type": "string"},
                    },
                },
            },
        },
    },
    "WebhookDeliveryList": {
        "type": "object",
        "additionalProperties": False,
        "required": ["data", "last_id"],
        "properties": {
            "data": {"type": "array", "items": _ref("WebhookDelivery")},
            "last_id": _nullable({"type": "string"}),
        },
    },
    "Redelivery": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "type", "state"],
        "properties": {
            "id": {"type": "string"},
            "type": {"const": "webhook_delivery"},
            "state": {"const": "pending"},
        },
    },
}

_WEBHOOK_ID = {
    "name": "webhook_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
}
_LAST_EVENT_ID = {
    "name": "last-event-id",
    "in": "header",
    "required": False,
    "description": "Resume after this event number (an `id:` of the stream).",
    "schema": {"type": "string", "pattern": "^[0-9]{0,18}$"},
}


# One event of a stream, as OpenAPI before 3.2 describes a text/event-stream: `data` is the
# event object (JSON): id, object, type, number, sequence, created_at and the batch's data.
_SSE_EVENT = {
    "type": "object",
    "required": ["event", "id", "data"],
    "properties": {
        "event": {"enum": list(ALL_EVENT_TYPES)},
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "retry": {"type": "integer"},
    },
}


def _stream(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"text/event-stream": {"schema": _SSE_EVENT}},
    }


def paths(operation: Any, json: Any, batch_id: dict[str, Any]) -> dict[str, Any]:
    """The paths, built with api/openapi.py's helpers (its _operation and _json)."""
    hook = "/v1/webhooks/{webhook_id}"
    return {
        "/v1/messages/batches/{batch_id}/events": {
            "parameters": [batch_id],
            "get": operation(
                "messageBatchEvents",
                _EXTENSION + "The batch's events as Server-Sent Events: those so far, then each"
                " as it happens, ending after batch.ended.",
                {200: _stream("`id:` the event's number, `event:` its type, `data:` the event.")},
                (400, 404),
                parameters=[_LAST_EVENT_ID],
            ),
        },
        "/v1/events": {
            "get": operation(
                "workspaceEvents",
                _EXTENSION + "The events of every batch of the caller's workspace, from now on"
                " (or after Last-Event-ID), as Server-Sent Events.",
                {200: _stream("A stream that stays open; keep-alive comments every 15 s.")},
                (400,),
                parameters=[_LAST_EVENT_ID],
            ),
        },
        "/v1/webhooks": {
            "post": operation(
                "createWebhook",
                _EXTENSION + "Add an endpoint the workspace's events are delivered to.",
                {200: json("The endpoint, with its secret (shown once).", "WebhookWithSecret")},
                (400, 403, 413),
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": _ref("NewWebhook")}},
                },
            ),
            "get": operation(
                "listWebhooks",
                _EXTENSION + "The workspace's webhook endpoints, without their secrets.",
                {200: json("The endpoints.", "WebhookList")},
                (),
            ),
        },
        "/v1/webhooks/workspace_secret": {
            "post": operation(
                "workspaceWebhookSecret",
                _EXTENSION + "The secret that signs deliveries to batches' own webhook_url.",
                {200: json("The secret.", "WebhookSecret")},
                (403,),
            ),
        },
        hook: {
            "parameters": [_WEBHOOK_ID],
            "delete": operation(
                "deleteWebhook",
                _EXTENSION + "Remove an endpoint and its delivery log.",
                {200: json("The endpoint is gone.", "DeletedWebhook")},
                (403, 404),
            ),
        },
        f"{hook}/rotate_secret": {
            "parameters": [_WEBHOOK_ID],
            "post": operation(
                "rotateWebhookSecret",
                _EXTENSION + "A new secret; the old one also signs for a day.",
                {200: json("The endpoint, with its new secret.", "WebhookWithSecret")},
                (403, 404),
            ),
        },
        f"{hook}/deliveries": {
            "parameters": [_WEBHOOK_ID],
            "get": operation(
                "listWebhookDeliveries",
                _EXTENSION + "The endpoint's deliveries, newest first, with their attempts.",
                {200: json("A page of deliveries.", "WebhookDeliveryList")},
                (400, 404),
                parameters=[
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                    {
                        "name": "before_id",
                        "in": "query",
                        "required": False,
                        "description": "The page of deliveries older than this one (last_id).",
                        "schema": {"type": "string", "pattern": "^(whdlv_)?[0-9]{1,18}$"},
                    },
                ],
            ),
        },
        f"{hook}/deliveries/{{delivery_id}}/redeliver": {
            "parameters": [
                _WEBHOOK_ID,
                {
                    "name": "delivery_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
                },
            ],
            "post": operation(
                "redeliverWebhookDelivery",
                _EXTENSION + "Attempt the delivery again now, whatever became of it.",
                {200: json("The delivery, pending again.", "Redelivery")},
                (403, 404),
            ),
        },
    }
