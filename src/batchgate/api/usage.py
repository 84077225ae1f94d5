"""`GET /v1/usage` (batchgate extension): tokens, requests by outcome and cost of the caller's
workspace, grouped by model and/or day, for chargeback of a shared server (service/usage.py)."""

import dataclasses
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchgate.api.batches import context, cost_object, json_response
from batchgate.api.errors import ApiError
from batchgate.service.usage import DAY_SECONDS, GROUPINGS, UsageGroup, usage_report

# Without starting_at, a report covers this many days up to ending_at.
DEFAULT_DAYS = 30
# Times a report may name: batch ids and timestamps count from the epoch, and a day's date must
# stay within what datetime represents.
EARLIEST = datetime(1970, 2, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _moment(request: Request, name: str) -> float | None:
    """A query parameter as a time: RFC 3339 (`2026-12-01T00:00:00Z`) or a date (UTC)."""
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(
            400, f"{name}: an RFC 3339 time (2026-12-01T00:00:00Z) or a date, not {raw!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not EARLIEST <= moment < LATEST:
        raise ApiError(400, f"{name}: a time from {EARLIEST.year} to {LATEST.year - 1}")
    return moment.timestamp()


def _group_by(request: Request) -> list[str]:
    wanted = [
        name.strip()
        for value in request.query_params.getlist("group_by")
        for name in value.split(",")
        if name.strip()
    ]
    for name in wanted:
        if name not in GROUPINGS:
            raise ApiError(400, f"group_by: Input should be {' or '.join(GROUPINGS)}, not {name!r}")
    return list(dict.fromkeys(wanted))


def _day(day: int) -> str:
    return datetime.fromtimestamp(day * DAY_SECONDS, UTC).date().isoformat()


def _group_object(group: UsageGroup, group_by: list[str]) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    if "model" in group_by:
        keys["model"] = group.model
    if "day" in group_by and group.day is not None:
        keys["day"] = _day(group.day)
    return {
        **keys,
        "usage": group.usage.token_counts(),
        "requests": dataclasses.asdict(group.requests),
        "cost": cost_object(group.cost),
    }


async def get_usage(request: Request) -> Response:
    state, owner = await context(request)
    ending_at = _moment(request, "ending_at") or state.clock()
    starting_at = _moment(request, "starting_at") or ending_at - DEFAULT_DAYS * DAY_SECONDS
    if starting_at >= ending_at:
        raise ApiError(400, "starting_at must be before ending_at")
    group_by = _group_by(request)
    groups = await usage_report(state.store, state.prices, owner, starting_at, ending_at, group_by)
    return json_response(
        {
            "type": "usage_report",
            "starting_at": datetime.fromtimestamp(starting_at, UTC).isoformat(),
            "ending_at": datetime.fromtimestamp(ending_at, UTC).isoformat(),
            "group_by": group_by,
            "data": [_group_object(group, group_by) for group in groups],
        }
    )


routes = [Route("/v1/usage", get_usage, methods=["GET"])]
