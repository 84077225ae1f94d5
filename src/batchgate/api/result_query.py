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


def result_query(request: Request) -> tuple[ResultView, ResultFilter]:
    follow = flag(request, "follow")
    merged = flag(request, "merged")
    after_part = None
    if (raw := request.query_params.get("after_part")) is not None:
        try:
            after_part = int(raw)
        except ValueError:
            raise ApiError(
                400, f"after_part: Input should be a valid integer, got {raw!r}"
            ) from None
        if after_part < 0:
            raise ApiError(400, f"after_part: Input should be 0 or more, got {after_part}")
    skip_lines = 0
    if (raw := request.query_params.get("skip_lines")) is not None:
        try:
            skip_lines = int(raw)
        except ValueError:
            raise ApiError(
                400, f"skip_lines: Input should be a valid integer, got {raw!r}"
            ) from None
        if skip_lines < 0:
            raise ApiError(400, f"skip_lines: Input should be 0 or more, got {skip_lines}")
    if merged and (follow or after_part is not None or skip_lines):
        raise ApiError(400, "merged: cannot be combined with follow, after_part or skip_lines.")
    custom_ids = listed(request, "custom_id")
    if len(custom_ids) > MAX_CUSTOM_IDS:
        raise ApiError(
            400, f"custom_id: at most {MAX_CUSTOM_IDS} may be given, not {len(custom_ids)}"
        )
    view = ResultView(
        partial=flag(request, "partial") or follow,
        follow=follow,
        after_part=after_part,
        skip_lines=skip_lines,
        merged=merged,
    )
    return view, ResultFilter(result_types(request), custom_ids)
