"""`GET /openapi.json`: the OpenAPI 3.1 description of the API as it is on the wire.

Maintained by hand beside the handlers (api/batches.py, api/batch_requests.py, api/errors.py)
and checked against the live server by schemathesis (tests/reliability/test_openapi.py), so a
change to either that the other does not follow fails the tests. No API key is needed to read it.
"""

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchgate.api import openai_openapi, openapi_events
from batchgate.api.batch_options import (
    DEFAULT_MIN_RESULTS,
    MAX_COUNT,
    MAX_LABEL_KEY,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    PRIORITY_RANGE,
)
from batchgate.api.batches import STATUSES
from batchgate.api.errors import ERROR_TYPES
from batchgate.api.ingest import CUSTOM_ID
from batchgate.api.result_query import RESULT_TYPES
from batchgate.api.state import AppState
from batchgate.config.settings import Settings
from batchgate.service.idempotency import MAX_KEY_LENGTH
from batchgate.service.usage import GROUPINGS
from batchgate.service.webhooks import MAX_URL_LENGTH

JSONL = "application/x-jsonl"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_TIMESTAMP = {"type": "string", "format": "date-time", "examples": ["2026-11-24T21:58:11.808381Z"]}
_EXTENSION = "(batchgate extension) "
_TOKEN_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
_LABELS = {
    "type": "object",
    "maxProperties": MAX_LABELS,
    "propertyNames": {"minLength": 1, "maxLength": MAX_LABEL_KEY},
    "additionalProperties": {"type": "string", "maxLength": MAX_LABEL_VALUE},
}


def _schemas(settings: Settings) -> dict[str, Any]:
    return {
        "MessageBatch": {
            "type": "object",
            "additionalProperties": False,
            "required": [
                "id",
                "type",
                "processing_status",
                "request_counts",
                "created_at",
                "expires_at",
                "ended_at",
                "cancel_initiated_at",
                "archived_at",
                "results_url",
            ],
            "properties": {
                "id": {"type": "string", "examples": ["msgbatch_8DrnNyPaxzlj80PW7WQU1Fsp"]},
                "type": {"const": "message_batch"},
                "processing_status": {"enum": ["in_progress", "canceling", "ended"]},
                "request_counts": _ref("RequestCounts"),
                "created_at": _TIMESTAMP,
                "expires_at": _TIMESTAMP,
                "ended_at": _nullable(_TIMESTAMP),
                "cancel_initiated_at": _nullable(_TIMESTAMP),
                "archived_at": _nullable(_TIMESTAMP),
                "results_url": {
                    "description": "Set once the batch has ended: an absolute URL of its results.",
                    **_nullable({"type": "string", "format": "uri"}),
                },
                "metadata": {"description": _EXTENSION + "The batch's labels.", **_LABELS},
                "priority": {
                    "description": _EXTENSION + "Higher-priority batches run first.",
                    "type": "integer",
                },
                "abort": {
                    "description": _EXTENSION + "When the batch cancels itself.",
                    **_nullable(_ref("AbortPolicy")),
                },
                "cancel_reason": {
                    "description": _EXTENSION + "Why the batch was canceled; null if it was not.",
                    **_nullable(_ref("CancelReason")),
                },
                "usage": {
                    "description": _EXTENSION + "Tokens of the succeeded requests so far.",
                    **_ref("Usage"),
                },
                "cost": {
                    "description": _EXTENSION + "Null unless the server has a price table.",
                    **_nullable(_ref("Cost")),
                },
                "parent_batch_id": {
                    "description": (
                        "(batchgate extension, only on batches in a retry chain) The batch this"
                        " one retries, null for the chain's original."
                    ),
                    **_nullable({"type": "string"}),
                },
                "retry_batch_ids": {
                    "description": (
                        "(batchgate extension, only on batches in a retry chain) The batch that"
                        " retries this one, if any (a batch is retried at most once)."
                    ),
                    "type": "array",
                    "items": {"type": "string"},
                },
                "merged_request_counts": {
                    "description": (
                        "(batchgate extension, only on a retried batch) The counts of its merged"
                        " results: each request's latest outcome down its retry chain."
                    ),
                    **_ref("RequestCounts"),
                },
            },
        },
        "RetryMessageBatch": {
            "description": (
                "Which results of the batch to retry: by default errored and expired ones, of any"
                " error type; error_types narrows the errored ones."
            ),
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "result_types": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"enum": list(RESULT_TYPES)},
                },
                "error_types": {"type": "array", "items": {"type": "string"}},
            },
        },
        "AbortPolicy": {
            "description": (
                "Any of: a share of errored requests above errored_share once min_results have"
                " ended; more output tokens than max_output_tokens; a cost above max_cost_usd"
                " (needs the server's price table)."
            ),
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "errored_share": {"type": "number", "minimum": 0, "maximum": 1},
                "min_results": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_COUNT,
                    "default": DEFAULT_MIN_RESULTS,
                },
                "max_output_tokens": {"type": "integer", "minimum": 0, "maximum": MAX_COUNT},
                "max_cost_usd": {"type": "number", "minimum": 0},
            },
        },
        "CancelReason": {
            "type": "object",
            "additionalProperties": False,
            "required": ["type"],
            "properties": {
                "type": {"enum": ["user", "abort_policy"]},
                "message": {"type": "string"},
            },
        },
        "Usage": {
            "type": "object",
            "additionalProperties": False,
            "required": list(_TOKEN_COUNTS),
            "properties": {name: {"type": "integer", "minimum": 0} for name in _TOKEN_COUNTS},
        },
        "Cost": {
            "type": "object",
            "additionalProperties": False,
            "required": ["usd", "currency"],
            "properties": {"usd": {"type": "number", "minimum": 0}, "currency": {"const": "USD"}},
        },
        "UsageReport": {
            "type": "object",
            "additionalProperties": False,
            "required": ["type", "starting_at", "ending_at", "group_by", "data"],
            "properties": {
                "type": {"const": "usage_report"},
                "starting_at": {"type": "string", "format": "date-time"},
                "ending_at": {"type": "string", "format": "date-time"},
                "group_by": {"type": "array", "items": {"enum": list(GROUPINGS)}},
                "data": {"type": "array", "items": _ref("UsageGroup")},
            },
        },
        "UsageGroup": {
            "description": (
                "model and day are there when grouped by them; grouped by model, requests that"
                " produced no message (errored, canceled, expired) have model null."
            ),
            "type": "object",
            "additionalProperties": False,
            "required": ["usage", "requests", "cost"],
            "properties": {
                "model": _nullable({"type": "string"}),
                "day": {"type": "string", "format": "date"},
                "usage": _ref("Usage"),
                "requests": _ref("RequestOutcomes"),
                "cost": _nullable(_ref("Cost")),
            },
        },
        "RequestOutcomes": {
            "type": "object",
            "additionalProperties": False,
            "required": list(RESULT_TYPES),
            "properties": {name: {"type": "integer", "minimum": 0} for name in RESULT_TYPES},
        },
        "RequestCounts": {
            "description": "They always sum to the number of requests; live while it runs.",
            "type": "object",
            "additionalProperties": False,
            "required": ["processing", *RESULT_TYPES],
            "properties": {
                name: {"type": "integer", "minimum": 0} for name in ("processing", *RESULT_TYPES)
            },
        },
        "DeletedMessageBatch": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "type"],
            "properties": {"id": {"type": "string"}, "type": {"const": "message_batch_deleted"}},
        },
        "MessageBatchList": {
            "type": "object",
            "additionalProperties": False,
            "required": ["data", "has_more", "first_id", "last_id"],
            "properties": {
                "data": {"type": "array", "items": _ref("MessageBatch")},
                "has_more": {"type": "boolean"},
                "first_id": _nullable({"type": "string"}),
                "last_id": _nullable({"type": "string"}),
            },
        },
        "CreateMessageBatch": {
            "type": "object",
            "additionalProperties": False,
            "required": ["requests"],
            "properties": {
                "requests": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": settings.max_requests_per_batch,
                    "items": _ref("BatchRequest"),
                },
                "metadata": {
                    "description": _EXTENSION + "Labels: list filters select by them.",
                    **_nullable(_LABELS),
                },
                "priority": {
                    "description": _EXTENSION + "Chunks of higher-priority batches run first.",
                    "type": "integer",
                    "minimum": -PRIORITY_RANGE,
                    "maximum": PRIORITY_RANGE,
                    "default": 0,
                },
                "abort": {
                    "description": _EXTENSION + "When the batch cancels itself.",
                    **_nullable(_ref("AbortPolicy")),
                },
                "webhook_url": {
                    "description": (
                        _EXTENSION + "Where this batch's events are delivered, signed with the"
                        " workspace's webhook secret (docs/events.md)."
                    ),
                    **_nullable({"type": "string", "maxLength": MAX_URL_LENGTH}),
                },
                "completion_window": {
                    "description": (
                        _EXTENSION + "Seconds until the batch expires, at most the server's"
                        f" expiry_seconds ({settings.expiry_seconds:g})."
                    ),
                    **_nullable(
                        {
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "maximum": settings.expiry_seconds,
                        }
                    ),
                },
            },
        },
        "BatchRequest": {
            "description": "custom_id must also be unique within the batch.",
            "type": "object",
            "additionalProperties": False,
            "required": ["custom_id", "params"],
            "properties": {
                "custom_id": {"type": "string", "pattern": f"^{CUSTOM_ID.pattern}$"},
                "params": {
                    "description": (
                        "The Messages API parameters (model, max_tokens, messages, ...). They are"
                        " validated when the request runs: invalid ones become that request's"
                        " errored result, never a failed create."
                    ),
                    "type": "object",
                },
            },
        },
        "Error": {
            "type": "object",
            "additionalProperties": False,
            "required": ["type", "error", "request_id"],
            "properties": {
                "type": {"const": "error"},
                "error": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["type", "message"],
                    "properties": {
                        "type": {"enum": sorted({*ERROR_TYPES.values(), "api_error"})},
                        "message": {"type": "string"},
                    },
                },
                "request_id": {
                    "type": "string",
                    "description": "The same as the request-id header.",
                },
            },
        },
    }


_REQUEST_ID_HEADER = {
    "request-id": {
        "description": "The id of this request, as in an error's request_id.",
        "schema": {"type": "string"},
    }
}

_ERRORS = {
    400: "Invalid request: a malformed create, a bad query parameter or a wrong state.",
    401: "Missing or unknown API key (when the server has keys configured).",
    403: "(batchgate extension) The API key is read-only: it can see but not change batches.",
    404: "No such batch (or webhook) for this key (unknown, deleted, another workspace's), or"
    " archived results.",
    408: "The create body did not arrive in full within the server's body timeout.",
    409: "The create with this Idempotency-Key is still being stored: retry (the SDK does).",
    413: "The create body is larger than the server accepts.",
    422: "This Idempotency-Key was used for a create with a different body.",
    503: "The server is shutting down and takes no new batches; retry after `retry-after`.",
}


def _error(status: int) -> dict[str, Any]:
    return {
        "description": f"{ERROR_TYPES[status]}: {_ERRORS[status]}",
        "headers": _REQUEST_ID_HEADER,
        "content": {"application/json": {"schema": _ref("Error")}},
    }


def _json(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": _REQUEST_ID_HEADER,
        "content": {"application/json": {"schema": _ref(schema)}},
    }


def _jsonl(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": _REQUEST_ID_HEADER,
        "content": {JSONL: {"schema": {"type": "string"}}},
    }


def _operation(
    operation_id: str,
    summary: str,
    responses: dict[int, dict[str, Any]],
    errors: tuple[int, ...],
    **extra: Any,
) -> dict[str, Any]:
    every = {**responses, **{status: _error(status) for status in (*errors, 401)}}
    return {
        "operationId": operation_id,
        "summary": summary,
        **extra,
        "responses": {str(status): every[status] for status in sorted(every)},
    }


def _flag(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "boolean", "default": False},
    }


def _listed(name: str, description: str, items: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": f"{description} (repeatable, or comma-separated).",
        "schema": {"type": "array", "items": items},
        "style": "form",
        "explode": True,
    }


# The results endpoint's extensions: without them it is Anthropic's (docs/api.md). The first
# four, the view, and `merged` are an OpenAI batch's results' too (api/openai_openapi.py).
_VIEW_PARAMETERS = [
    _flag(
        "partial",
        "(batchgate extension) The results committed so far, on a running batch too; the"
        " batchgate-last-part header names the position they reach.",
    ),
    _flag(
        "follow",
        "(batchgate extension) As partial, then each result as its part commits, until the"
        " batch ends.",
    ),
    {
        "name": "after_part",
        "in": "query",
        "required": False,
        "description": (
            "(batchgate extension) Only the parts committed after this position (a"
            " batchgate-last-part header); on an ended batch without partial too."
        ),
        "schema": {"type": "integer", "minimum": 0},
    },
    {
        "name": "skip_lines",
        "in": "query",
        "required": False,
        "description": (
            "(batchgate extension) Leave out the first lines of those after after_part: a"
            " follower whose response broke off passes the whole lines it got."
        ),
        "schema": {"type": "integer", "minimum": 0},
    },
]
_MERGED = _flag(
    "merged",
    "(batchgate extension) One line per request of the batch: its latest outcome down its retry"
    " chain.",
)
_RESULT_PARAMETERS = [
    *_VIEW_PARAMETERS,
    _MERGED,
    _listed(
        "result_type",
        "(batchgate extension) Only results of these types",
        {"enum": list(RESULT_TYPES)},
    ),
    _listed(
        "custom_id",
        "(batchgate extension) Only the results of these custom_ids, at most 1,000",
        {"type": "string"},
    ),
]

_BATCH_ID = {
    "name": "batch_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "pattern": "^[^/]+$"},
}
_ANTHROPIC_VERSION = {
    "name": "anthropic-version",
    "in": "header",
    "required": False,
    "description": "Accepted and ignored: every SDK version's value (2023-06-01, 2026-10-21).",
    "schema": {"type": "string"},
}
_PAGE_PARAMETERS = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "Batches per page.",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20},
    },
    {
        "name": "after_id",
        "in": "query",
        "required": False,
        "description": "The page of batches older than this one (a cursor: last_id).",
        "schema": {"type": "string"},
    },
    {
        "name": "before_id",
        "in": "query",
        "required": False,
        "description": "The page of batches newer than this one (a cursor: first_id).",
        "schema": {"type": "string"},
    },
]


_IDEMPOTENCY_KEY = {
    "name": "idempotency-key",
    "in": "header",
    "required": False,
    "description": (
        _EXTENSION + "A retry with the same key and body returns the batch the first create"
        " made (header idempotent-replayed: true) instead of a second one."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}
_LIST_FILTERS = [
    {
        "name": "processing_status",
        "in": "query",
        "required": False,
        "description": _EXTENSION + "Only batches in this status.",
        "schema": {"enum": list(STATUSES)},
    },
    {
        "name": "metadata",
        "in": "query",
        "required": False,
        "description": _EXTENSION + "metadata[key]=value: only batches with these labels (all).",
        "schema": {"type": "object", "additionalProperties": {"type": "string"}},
        "style": "deepObject",
        "explode": True,
    },
]
_USAGE_PARAMETERS = [
    {
        "name": "group_by",
        "in": "query",
        "required": False,
        "description": "model, day or both (comma-separated); none: one group.",
        "schema": {"type": "array", "items": {"enum": list(GROUPINGS)}},
        "style": "form",
        "explode": False,
    },
    {
        "name": "starting_at",
        "in": "query",
        "required": False,
        "description": "Batches created from then (RFC 3339, or a date); default 30 days ago.",
        "schema": {"type": "string", "format": "date-time"},
    },
    {
        "name": "ending_at",
        "in": "query",
        "required": False,
        "description": "Batches created before then; default now.",
        "schema": {"type": "string", "format": "date-time"},
    },
]


def document(settings: Settings) -> dict[str, Any]:
    """The description of a server running with `settings` (its limits are in it)."""
    batch = "The message batch."
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "batchgate: the Message Batches API",
            "version": "1",
            "description": (
                "Anthropic's Message Batches API as batchgate serves it, with the same wire"
                " format (docs/api.md), and OpenAI's Batch API (/v1/files, /v1/batches) in"
                " OpenAI's. Wrong-state errors are 400, never 409."
            ),
        },
        "security": [{"ApiKey": []}, {"Bearer": []}],
        "paths": {
            "/v1/messages/batches": {
                "parameters": [_ANTHROPIC_VERSION],
                "post": _operation(
                    "createMessageBatch",
                    "Create a batch; processing starts at once.",
                    {200: _json(batch, "MessageBatch")},
                    (400, 403, 408, 409, 413, 422, 503),
                    parameters=[_IDEMPOTENCY_KEY],
                    requestBody={
                        "required": True,
                        "description": f"At most {settings.max_body_bytes} bytes.",
                        "content": {"application/json": {"schema": _ref("CreateMessageBatch")}},
                    },
                ),
                "get": _operation(
                    "listMessageBatches",
                    "List the caller's batches, newest first.",
                    {200: _json("A page of batches.", "MessageBatchList")},
                    (400,),
                    parameters=_PAGE_PARAMETERS + _LIST_FILTERS,
                ),
            },
            "/v1/messages/batches/{batch_id}": {
                "parameters": [_BATCH_ID, _ANTHROPIC_VERSION],
                "get": _operation(
                    "retrieveMessageBatch",
                    "Retrieve a batch.",
                    {200: _json(batch, "MessageBatch")},
                    (404,),
                ),
                "delete": _operation(
                    "deleteMessageBatch",
                    "Delete an ended batch and its results.",
                    {200: _json("The batch is gone.", "DeletedMessageBatch")},
                    (400, 403, 404),
                    parameters=[
                        _flag(
                            "cascade",
                            "(batchgate extension) Delete the batch's retries too; without it"
                            " a batch that has a retry batch is refused (400).",
                        )
                    ],
                ),
            },
            "/v1/messages/batches/{batch_id}/cancel": {
                "parameters": [_BATCH_ID, _ANTHROPIC_VERSION],
                "post": _operation(
                    "cancelMessageBatch",
                    "Start canceling a batch (the SDK sends an empty body).",
                    {200: _json(batch, "MessageBatch")},
                    (400, 403, 404),
                ),
            },
            "/v1/messages/batches/{batch_id}/results": {
                "parameters": [_BATCH_ID, _ANTHROPIC_VERSION],
                "get": _operation(
                    "messageBatchResults",
                    "The results of an ended batch: one JSON object per line, \\n-terminated.",
                    {200: _jsonl("A result line per request, in any order.")},
                    (400, 404),
                    parameters=_RESULT_PARAMETERS,
                ),
            },
            "/v1/messages/batches/{batch_id}/retry": {
                "parameters": [_BATCH_ID, _ANTHROPIC_VERSION],
                "post": _operation(
                    "retryMessageBatch",
                    "(batchgate extension) A new batch of the ended batch's failed requests,"
                    " recorded as its retry.",
                    {200: _json("The retry batch.", "MessageBatch")},
                    (400, 403, 404, 413),
                    requestBody={
                        "required": False,
                        "content": {"application/json": {"schema": _ref("RetryMessageBatch")}},
                    },
                ),
            },
            "/v1/messages/batches/{batch_id}/requests": {
                "parameters": [_BATCH_ID, _ANTHROPIC_VERSION],
                "get": _operation(
                    "messageBatchRequests",
                    "(batchgate extension) The requests of a batch as submitted, as JSONL.",
                    {200: _jsonl('A {"custom_id", "params"} line per request kept.')},
                    (400, 404),
                    parameters=[
                        {
                            "name": "result_type",
                            "in": "query",
                            "required": False,
                            "description": (
                                "Keep only requests whose result has one of these types"
                                " (repeatable, or comma-separated)."
                            ),
                            "schema": {"type": "array", "items": {"enum": list(RESULT_TYPES)}},
                            "style": "form",
                            "explode": True,
                        }
                    ],
                ),
            },
            "/v1/usage": {
                "parameters": [_ANTHROPIC_VERSION],
                "get": _operation(
                    "usageReport",
                    _EXTENSION + "Tokens, requests by outcome and cost of the caller's"
                    " workspace, by the day its batches were created (UTC) and/or model.",
                    {200: _json("The groups, by day then model.", "UsageReport")},
                    (400,),
                    parameters=_USAGE_PARAMETERS,
                ),
            },
            **openapi_events.paths(_operation, _json, _BATCH_ID),
            **openai_openapi.paths(settings, [*_VIEW_PARAMETERS, _MERGED]),
        },
        "components": {
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": _schemas(settings) | openapi_events.SCHEMAS | openai_openapi.schemas(),
        },
    }


async def openapi_json(request: Request) -> Response:
    state: AppState = request.app.state.batchgate
    return Response(orjson.dumps(document(state.settings)), media_type="application/json")


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
