"""The OpenAI Batch API's part of `/openapi.json`: its paths and schemas, in OpenAI's error
envelope (api/openai_files.py, api/openai_batches.py; docs/api.md, "OpenAI Batch API")."""

from typing import Any

from batchgate.api.errors import ERROR_TYPES
from batchgate.api.openai_batches import LINES
from batchgate.api.openai_files import EXPIRES_ANCHOR, EXPIRES_SECONDS
from batchgate.api.openai_retry_body import STATUS_CODES, STATUS_TEXT
from batchgate.config.settings import Settings
from batchgate.engine.openai_requests import ENDPOINTS
from batchgate.service.openai_batches import COMPLETION_WINDOWS

_ERRORS = {
    400: "Invalid request: a malformed body or query, or a wrong state (never 409).",
    401: "Missing or unknown API key (when the server has keys configured).",
    403: "(batchgate extension) The API key is read-only.",
    404: "No such file or batch for this key.",
    408: "The body did not arrive in full within the server's body timeout.",
    413: "The file (or a create's or a retry's body, past 64 KiB) is larger than the server"
    " accepts.",
}
_STATUSES = ("failed", "in_progress", "cancelling", "cancelled", "completed", "expired")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _operation(
    operation_id: str, summary: str, ok: dict[str, Any], errors: tuple[int, ...], **extra: Any
) -> dict[str, Any]:
    responses = {200: ok} | {
        status: {
            "description": f"{ERROR_TYPES[status]}: {_ERRORS[status]}",
            "content": {"application/json": {"schema": _ref("OpenAIError")}},
        }
        for status in (*errors, 401)
    }
    return {
        "operationId": operation_id,
        "summary": summary,
        **extra,
        "responses": {str(status): responses[status] for status in sorted(responses)},
    }


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _path_id(description: str) -> dict[str, Any]:
    return {
        "name": "id",
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def _expires_after(description: str) -> dict[str, Any]:
    low, high = EXPIRES_SECONDS
    return {
        "type": "object",
        "description": description,
        "required": ["anchor", "seconds"],
        "properties": {
            "anchor": {"const": EXPIRES_ANCHOR},
            "seconds": {"type": "integer", "minimum": low, "maximum": high},
        },
    }


def _list_of(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["object", "data", "first_id", "last_id", "has_more"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": _ref(item)},
            "first_id": _nullable({"type": "string"}),
            "last_id": _nullable({"type": "string"}),
            "has_more": {"type": "boolean"},
        },
    }


def paths(settings: Settings, view_parameters: list[dict[str, Any]]) -> dict[str, Any]:
    """The paths; `view_parameters` are the Message Batches' results' `partial`, `follow`,
    `after_part`, `skip_lines` and `merged` (api/openapi.py), which an OpenAI batch's results
    take too."""
    file_id = _path_id("The file's id (file-…).")
    batch_id = _path_id("The batch's id (batch_…).")
    return {
        "/v1/files": {
            "post": _operation(
                "uploadFile",
                "(OpenAI Batch API) Upload a file of batch requests, streamed to storage.",
                _json("The stored file.", "OpenAIFile"),
                (400, 403, 408, 413),
                requestBody={
                    "required": True,
                    "description": f"At most {settings.openai_max_file_bytes} bytes of file.",
                    "content": {"multipart/form-data": {"schema": _ref("FileUpload")}},
                },
            ),
            "get": _operation(
                "listFiles",
                "(OpenAI Batch API) The caller's files.",
                _json("A page of files.", "OpenAIFileList"),
                (400,),
                parameters=[
                    _query("after", {"type": "string"}, "The page after this file id."),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 10_000},
                        "Files per page.",
                    ),
                    _query(
                        "order", {"enum": ["asc", "desc"], "default": "desc"}, "By creation time."
                    ),
                    _query("purpose", {"type": "string"}, "Only files of this purpose."),
                ],
            ),
        },
        "/v1/files/{id}": {
            "parameters": [file_id],
            "get": _operation(
                "retrieveFile",
                "(OpenAI Batch API) A file.",
                _json("The file.", "OpenAIFile"),
                (404,),
            ),
            "delete": _operation(
                "deleteFile",
                "(OpenAI Batch API) Delete a file.",
                _json("The file is gone.", "DeletedOpenAIFile"),
                (403, 404),
            ),
        },
        "/v1/files/{id}/content": {
            "parameters": [file_id],
            "get": _operation(
                "fileContent",
                "(OpenAI Batch API) The file's bytes; a batch's output and error files as JSONL.",
                {
                    "description": "The bytes.",
                    "content": {"application/octet-stream": {"schema": {"type": "string"}}},
                },
                (404,),
            ),
        },
        "/v1/batches": {
            "post": _operation(
                "createBatch",
                "(OpenAI Batch API) A batch of the input file's requests, checked line by line;"
                " a file with bad lines makes a failed batch.",
                _json("The batch.", "OpenAIBatch"),
                (400, 403, 404, 408, 413),
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CreateOpenAIBatch")}},
                },
            ),
            "get": _operation(
                "listBatches",
                "(OpenAI Batch API) The caller's batches, newest first.",
                _json("A page of batches.", "OpenAIBatchList"),
                (400,),
                parameters=[
                    _query("after", {"type": "string"}, "The page after this batch id."),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                        "Batches per page.",
                    ),
                ],
            ),
        },
        "/v1/batches/{id}": {
            "parameters": [batch_id],
            "get": _operation(
                "retrieveBatch",
                "(OpenAI Batch API) A batch.",
                _json("The batch.", "OpenAIBatch"),
                (404,),
            ),
        },
        "/v1/batches/{id}/events": {
            "parameters": [batch_id],
            "get": _operation(
                "openaiBatchEvents",
                "(batchgate extension) The batch's events as Server-Sent Events: its"
                " batch.progress (at most one a second while its counts move), then its end"
                " (batch.completed, batch.cancelled, batch.expired; batch.failed for a batch"
                " failed at create), after which the stream ends. Last-Event-ID resumes it.",
                {
                    "description": "`id:` the event's number, `event:` its type,"
                    " `data:` the event.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                (400, 404),
                parameters=[
                    {
                        "name": "last-event-id",
                        "in": "header",
                        "required": False,
                        "description": "Resume after this event number (an `id:` of the stream).",
                        "schema": {"type": "string", "pattern": "^[0-9]{0,18}$"},
                    }
                ],
            ),
        },
        "/v1/batches/{id}/results": {
            "parameters": [batch_id],
            "get": _operation(
                "openaiBatchResults",
                "(batchgate extension) The batch's output and error lines (those of its output"
                " and error files), on a running batch too with partial or follow; with merged,"
                " each custom_id's latest line down its retry chain.",
                {
                    "description": "JSONL: a line per request ended, in any order; the"
                    " batchgate-last-part header names the position a partial response reaches.",
                    "content": {"application/x-jsonl": {"schema": {"type": "string"}}},
                },
                (400, 404),
                parameters=[
                    *view_parameters,
                    _query(
                        "lines",
                        {"enum": list(LINES)},
                        "Only the lines of the output file (2xx answers), or of the error file.",
                    ),
                ],
            ),
        },
        "/v1/batches/{id}/retry": {
            "parameters": [batch_id],
            "post": _operation(
                "retryOpenAIBatch",
                "(batchgate extension) A new batch of the ended batch's failed requests (by"
                " default its error file's; the optional body picks which), from a new input"
                " file of exactly those request lines, recorded as its retry.",
                _json("The retry batch.", "OpenAIBatch"),
                (400, 403, 404, 408, 413),
                requestBody={
                    "required": False,
                    "content": {"application/json": {"schema": _ref("RetryOpenAIBatch")}},
                },
            ),
        },
        "/v1/batches/{id}/cancel": {
            "parameters": [batch_id],
            "post": _operation(
                "cancelBatch",
                "(OpenAI Batch API) Start cancelling a batch (no body needed).",
                _json("The batch.", "OpenAIBatch"),
                (400, 403, 404),
            ),
        },
    }


def schemas() -> dict[str, Any]:
    timestamp = _nullable({"type": "integer"})
    low, high = STATUS_CODES
    return {
        "OpenAIError": {
            "type": "object",
            "additionalProperties": False,
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["message", "type", "param", "code"],
                    "properties": {
                        "message": {"type": "string"},
                        "type": {"enum": sorted({*ERROR_TYPES.values(), "api_error"})},
                        "param": _nullable({"type": "string"}),
                        "code": {"type": "null"},
                    },
                }
            },
        },
        "FileUpload": {
            "type": "object",
            "required": ["file", "purpose"],
            "properties": {
                "file": {"type": "string", "format": "binary"},
                "purpose": {"enum": ["batch"]},
                # A form's nested fields, as the SDK sends `expires_after`.
                "expires_after[anchor]": {"const": EXPIRES_ANCHOR},
                "expires_after[seconds]": {
                    "type": "integer",
                    "minimum": EXPIRES_SECONDS[0],
                    "maximum": EXPIRES_SECONDS[1],
                    "description": "The file expires this many seconds after its upload"
                    " (without it, a batch file expires after the server's"
                    " openai_batch_file_expiry_seconds, 30 days by default).",
                },
            },
        },
        "OpenAIFile": {
            "type": "object",
            "required": ["id", "object", "bytes", "created_at", "filename", "purpose", "status"],
            "properties": {
                "id": {"type": "string"},
                "object": {"const": "file"},
                "bytes": {"type": "integer"},
                "created_at": {"type": "integer"},
                "filename": {"type": "string"},
                "purpose": {"enum": ["batch", "batch_output"]},
                "status": {"const": "processed"},
                "expires_at": timestamp,
                "status_details": {"type": "null"},
            },
        },
        "OpenAIFileList": _list_of("OpenAIFile"),
        "DeletedOpenAIFile": {
            "type": "object",
            "required": ["id", "object", "deleted"],
            "properties": {
                "id": {"type": "string"},
                "object": {"const": "file"},
                "deleted": {"const": True},
            },
        },
        "CreateOpenAIBatch": {
            "type": "object",
            "required": ["input_file_id", "endpoint", "completion_window"],
            "properties": {
                "input_file_id": {"type": "string"},
                "endpoint": {"enum": list(ENDPOINTS)},
                "completion_window": {"enum": list(COMPLETION_WINDOWS)},
                "metadata": _nullable(
                    {
                        "type": "object",
                        "maxProperties": 16,
                        "additionalProperties": {"type": "string", "maxLength": 512},
                    }
                ),
                "output_expires_after": _nullable(
                    _expires_after(
                        "Its output and error files expire this many seconds after it ended."
                    )
                ),
            },
        },
        "RetryOpenAIBatch": {
            "description": "Which lines of the batch's results to retry; a field left out (or"
            " null) keeps its default, and no body at all retries every line of its error file.",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "status_codes": _nullable(
                    {
                        "type": "array",
                        "description": "Answered requests whose response.status_code is one of"
                        " these: a code (429) or a class ('5xx'). Default: every status but 2xx;"
                        " a 2xx retries answered requests too.",
                        "items": {
                            "anyOf": [
                                {"type": "integer", "minimum": low, "maximum": high},
                                {"type": "string", "pattern": f"^{STATUS_TEXT.pattern}$"},
                            ]
                        },
                    }
                ),
                "error_types": _nullable(
                    {
                        "type": "array",
                        "description": "Only the failed answers whose response.body.error.type"
                        " is one of these. Default (or empty): any.",
                        "items": {"type": "string"},
                    }
                ),
                "include_cancelled": _nullable(
                    {
                        "type": "boolean",
                        "default": True,
                        "description": "Requests that never ran because the batch was cancelled"
                        " (error.code batch_cancelled).",
                    }
                ),
                "include_expired": _nullable(
                    {
                        "type": "boolean",
                        "default": True,
                        "description": "Requests that never ran because the window passed"
                        " (error.code batch_expired).",
                    }
                ),
            },
        },
        "OpenAIBatch": {
            "type": "object",
            "required": [
                "id",
                "object",
                "endpoint",
                "input_file_id",
                "completion_window",
                "status",
                "created_at",
            ],
            "properties": {
                "id": {"type": "string"},
                "object": {"const": "batch"},
                "endpoint": {"type": "string"},
                "model": _nullable({"type": "string"}),
                "errors": _nullable(
                    {
                        "type": "object",
                        "properties": {
                            "object": {"const": "list"},
                            "data": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "code": {"type": "string"},
                                        "message": {"type": "string"},
                                        "param": _nullable({"type": "string"}),
                                        "line": _nullable({"type": "integer"}),
                                    },
                                },
                            },
                        },
                    }
                ),
                "input_file_id": {"type": "string"},
                "completion_window": {"type": "string"},
                "status": {"enum": list(_STATUSES)},
                "output_file_id": _nullable({"type": "string"}),
                "error_file_id": _nullable({"type": "string"}),
                "created_at": {"type": "integer"},
                **{
                    name: timestamp
                    for name in (
                        "in_progress_at",
                        "expires_at",
                        "finalizing_at",
                        "completed_at",
                        "failed_at",
                        "expired_at",
                        "cancelling_at",
                        "cancelled_at",
                    )
                },
                "request_counts": {
                    "type": "object",
                    "required": ["total", "completed", "failed"],
                    "properties": {
                        "total": {"type": "integer"},
                        "completed": {"type": "integer"},
                        "failed": {"type": "integer"},
                    },
                },
                "metadata": _nullable(
                    {"type": "object", "additionalProperties": {"type": "string"}}
                ),
                "usage": _nullable({"type": "object"}),
                # Lineage, on the batches of a retry chain only.
                "parent_batch_id": {
                    **_nullable({"type": "string"}),
                    "description": "(batchgate extension) The batch this one retries.",
                },
                "retry_batch_ids": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "(batchgate extension) The batch that retries this one.",
                },
                "merged_request_counts": {
                    "type": "object",
                    "description": "(batchgate extension) The counts of its requests' latest"
                    " outcomes down its retry chain.",
                    "properties": {
                        "total": {"type": "integer"},
                        "completed": {"type": "integer"},
                        "failed": {"type": "integer"},
                    },
                },
            },
        },
        "OpenAIBatchList": _list_of("OpenAIBatch"),
    }
