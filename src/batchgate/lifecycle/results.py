"""The four shapes of a result line, exactly as the results JSONL carries them."""

from typing import Any

import orjson

from batchgate.lifecycle.ids import new_request_id


def succeeded(custom_id: str, message: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}
    )


def errored(custom_id: str, error_type: str, message: str) -> bytes:
    # `message` beside `type` in the outer object lets both the SDK's typed path
    # (result.error.error.message) and the seed guide's result.error.message work.
    return orjson.dumps(
        {
            "custom_id": custom_id,
            "result": {
                "type": "errored",
                "error": {
                    "type": "error",
                    "message": message,
                    "error": {"type": error_type, "message": message},
                    "request_id": new_request_id(),
                },
            },
        }
    )


def canceled(custom_id: str) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "result": {"type": "canceled"}})


def expired(custom_id: str) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "result": {"type": "expired"}})
