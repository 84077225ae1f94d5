"""What a create body may carry beyond Anthropic's `requests` (batchgate extensions, which the
SDK sends with `extra_body`): labels, priority, an abort policy, a completion window and a
webhook URL (checked by the create, which resolves it).

msgspec checks their types and ranges as the body is decoded (api/ingest.py); what it cannot
express (the sizes of labels, a policy that needs prices) is checked here.
"""

from typing import Annotated, Any

import msgspec

from batchgate.api.errors import ApiError
from batchgate.storage.base import BatchOptions

MAX_LABELS = 16
MAX_LABEL_KEY = 64
MAX_LABEL_VALUE = 512
# Wide enough for any scheme of levels; stored as a 32-bit integer.
PRIORITY_RANGE = 1_000_000
# Ended requests an errored-share policy waits for unless told otherwise: a few errors among
# the first results say little.
DEFAULT_MIN_RESULTS = 100

# Counts beyond this are refused: stored as JSON and compared with 64-bit totals.
MAX_COUNT = 10**15

Priority = Annotated[int, msgspec.Meta(ge=-PRIORITY_RANGE, le=PRIORITY_RANGE)]


class AbortPolicy(msgspec.Struct, forbid_unknown_fields=True):
    """When the batch cancels itself (lifecycle/abort_policies.py); any of the three."""

    errored_share: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    min_results: Annotated[int, msgspec.Meta(ge=1, le=MAX_COUNT)] = DEFAULT_MIN_RESULTS
    max_output_tokens: Annotated[int, msgspec.Meta(ge=0, le=MAX_COUNT)] | None = None
    max_cost_usd: Annotated[float, msgspec.Meta(ge=0)] | None = None


class CreateExtensions(msgspec.Struct):
    metadata: dict[str, str] | None = None
    priority: Priority = 0
    abort: AbortPolicy | None = None
    completion_window: Annotated[float, msgspec.Meta(gt=0)] | None = None
    # Where this batch's events are delivered, signed with the workspace's webhook secret.
    webhook_url: str | None = None


def batch_options(
    extensions: CreateExtensions, expiry_seconds: float, prices_configured: bool
) -> BatchOptions:
    """The options the create's extensions set; a 400 for those the server cannot take."""
    metadata = extensions.metadata
    if metadata is not None:
        if len(metadata) > MAX_LABELS:
            raise ApiError(400, f"metadata: at most {MAX_LABELS} labels, not {len(metadata)}")
        for key, value in metadata.items():
            if not 1 <= len(key) <= MAX_LABEL_KEY:
                raise ApiError(
                    400, f"metadata: keys are 1 to {MAX_LABEL_KEY} characters (got {key[:80]!r})"
                )
            if len(value) > MAX_LABEL_VALUE:
                raise ApiError(
                    400, f"metadata.{key}: values are at most {MAX_LABEL_VALUE} characters"
                )
    window = extensions.completion_window
    if window is not None and window > expiry_seconds:
        raise ApiError(
            400,
            f"completion_window: at most this server's expiry_seconds, {expiry_seconds:g},"
            f" not {window:g}",
        )
    return BatchOptions(
        metadata=metadata or None,
        priority=extensions.priority,
        abort_policy=_abort_policy(extensions.abort, prices_configured),
    )


def _abort_policy(abort: AbortPolicy | None, prices_configured: bool) -> dict[str, Any] | None:
    if abort is None:
        return None
    if (abort.errored_share, abort.max_output_tokens, abort.max_cost_usd) == (None, None, None):
        raise ApiError(
            400, "abort: set errored_share, max_output_tokens or max_cost_usd (or omit abort)"
        )
    if abort.max_cost_usd is not None and not prices_configured:
        raise ApiError(
            400, "abort.max_cost_usd: this server has no price table ([[prices]]) to cost by"
        )
    policy = {
        name: value for name, value in msgspec.to_builtins(abort).items() if value is not None
    }
    if abort.errored_share is None:
        del policy["min_results"]
    return policy
