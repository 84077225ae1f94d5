"""The results endpoint's extensions, read from its query (docs/api.md, "Beyond the original").

`partial`, `follow`, `after_part`, `skip_lines`, `merged`, `result_type` and `custom_id`; without
any of them the endpoint is Anthropic's. Each response in commit order names, in
LAST_PART_HEADER, the position of the last part committed as it began: a reader passes it back
as `after_part`. A follower whose response broke off asks again with the `after_part` that
response had (or none) and, as `skip_lines`, the whole lines it got from there.
"""

from starlette.requests import Request

from batchgate.api.errors import ApiError
from batchgate.service.result_views import ResultFilter, ResultView

RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")
LAST_PART_HEADER = "batchgate-last-part"
MAX_CUSTOM_IDS = 1000


def flag(request: Request, name: str) -> bool:
    """An extension's true/false query parameter; absent is false."""
    raw = request.query_params.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise ApiError(400, f"{name}: Input should be true or false, got {raw!r}")
    return raw in ("true", "1")


def listed(request: Request, name: str) -> frozenset[str]:
    """A parameter given repeated, comma-separated, or both; also as `name[]`, how the official
    SDKs send a list (custom_ids hold no comma)."""
    values = request.query_params.getlist(name) + request.query_params.getlist(f"{name}[]")
    return frozenset(item for value in values for item in value.split(",") if item)


def result_types(request: Request) -> frozenset[str]:
    wanted = listed(request, "result_type")
    unknown = sorted(wanted - set(RESULT_TYPES))
    if unknown:
        raise ApiError(400, f"result_type: {unknown[0]!r} is not one of {', '.join(RESULT_TYPES)}")
    return wanted


def _count(request: Request, name: str) -> int | None:
    """A whole number of 0 or more; absent is None."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            400, f"{name}: Input should be a valid integer, got {raw!r}", param=name
        ) from None
    if value < 0:
        raise ApiError(400, f"{name}: Input should be 0 or more, got {value}", param=name)
    return value


def result_view(request: Request, merged: bool = False) -> ResultView:
    """`partial`, `follow`, `after_part` and `skip_lines`: which lines, in which order. The
    results of Message Batches and of OpenAI batches (api/openai_batches.py) read them alike."""
    follow = flag(request, "follow")
    after_part = _count(request, "after_part")
    skip_lines = _count(request, "skip_lines") or 0
    if merged and (follow or after_part is not None or skip_lines):
        raise ApiError(400, "merged: cannot be combined with follow, after_part or skip_lines.")
    return ResultView(
        partial=flag(request, "partial") or follow,
        follow=follow,
        after_part=after_part,
        skip_lines=skip_lines,
        merged=merged,
    )


def result_query(request: Request) -> tuple[ResultView, ResultFilter]:
    view = result_view(request, flag(request, "merged"))
    custom_ids = listed(request, "custom_id")
    if len(custom_ids) > MAX_CUSTOM_IDS:
        raise ApiError(
            400, f"custom_id: at most {MAX_CUSTOM_IDS} may be given, not {len(custom_ids)}"
        )
    return view, ResultFilter(result_types(request), custom_ids)
