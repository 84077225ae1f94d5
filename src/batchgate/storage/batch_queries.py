"""The SQL both stores share for what the control extensions add to a batch: the page of a
filtered list, the columns and JSON values of labels, abort policies and cancel reasons, and the
order of the queue (priority, and turns across workspaces).

Statements are written once with `{mark}` for the driver's placeholder (`?` or `%s`).
"""

from collections.abc import Mapping
from typing import Any

import orjson

from batchgate.storage.base import BatchFilter, BatchRow, TokenUsage

# In the order of BatchRow's fields, the batch's own columns.
BATCH_FIELDS = (
    "id, status, total, processing, succeeded, errored, canceled, expired,"
    " created_at, expires_at, ended_at, cancel_initiated_at, archived_at,"
    " metadata, priority, abort_policy, cancel_reason, webhook_url"
)
USAGE_FIELDS = (
    "requests, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens"
)


def batch_columns(table: str, usage_array: str) -> str:
    """What a BatchRow is read from: BATCH_FIELDS of `table`, then what other tables hold about
    the batch, in the same statement (a retrieve while thousands of requests end at once waits
    for the GIL and a core at each statement): its usage as a JSON array of
    `[model, *USAGE_FIELDS]` arrays (`usage_array`: the store's aggregate of `{}`'s arrays into
    JSON text, `[]` when none), the batch it retries and the batch that retries it."""
    usage = usage_array.format(f"model, {USAGE_FIELDS}")
    return (
        f"{prefixed(BATCH_FIELDS, table)},"
        f" (SELECT {usage} FROM batch_usage WHERE batch_id = {table}.id),"
        f" (SELECT parent_id FROM retries WHERE child_id = {table}.id),"
        f" (SELECT child_id FROM retries WHERE parent_id = {table}.id)"
    )


def prefixed(columns: str, table: str) -> str:
    return ", ".join(f"{table}.{column.strip()}" for column in columns.split(","))


def as_json(value: Mapping[str, Any] | None) -> str | None:
    return None if not value else orjson.dumps(value).decode()


def batch_row(row: tuple[Any, ...]) -> BatchRow:
    """A row of batch_columns, its JSON columns decoded."""
    metadata, priority, abort_policy, cancel_reason, webhook_url, usage = row[13:19]
    # The first 13 columns are BatchRow's first 13 fields, which mypy cannot tell from a tuple.
    return BatchRow(  # type: ignore[call-arg]
        *row[:13],
        None if metadata is None else orjson.loads(metadata),
        priority,
        None if abort_policy is None else orjson.loads(abort_policy),
        None if cancel_reason is None else orjson.loads(cancel_reason),
        webhook_url,
        tuple(sorted((model, TokenUsage(*tokens)) for model, *tokens in orjson.loads(usage))),
        row[19],
        row[20],
    )


def list_page_query(
    owner: str,
    only: BatchFilter,
    cursor: str | None,
    newer: bool,
    limit: int,
    mark: str,
    blob_contains: str,
    usage_array: str,
) -> tuple[str, list[object]]:
    """The statement and parameters of a page of an owner's batches: the `limit` nearest to
    `cursor` (older, or `newer`), in walking order. With labels it walks the first label's
    index entries in id order, each further label checked by its own index, so a page reads
    about as many entries as it holds rows matching the first label. A custom_id is looked for
    in the stored custom_ids arrays of each batch it walks (`blob_contains`: the store's test
    of a blob {blob} holding the bytes {needle}), without an index: a search, not a lookup.
    `usage_array` as batch_columns takes it."""
    columns = batch_columns("b", usage_array)
    if only.labels:
        (key, value), others = only.labels[0], only.labels[1:]
        source = "batch_labels l JOIN batches b ON b.id = l.batch_id"
        id_column = "l.batch_id"
        conditions = [f"l.owner = {mark}", f"l.key = {mark}", f"l.value = {mark}"]
        parameters: list[object] = [owner, key, value]
        for key, value in others:
            conditions.append(
                "EXISTS (SELECT 1 FROM batch_labels o WHERE o.owner = l.owner"
                f" AND o.key = {mark} AND o.value = {mark} AND o.batch_id = l.batch_id)"
            )
            parameters += [key, value]
    else:
        source, id_column = "batches b", "b.id"
        conditions, parameters = [f"b.owner = {mark}"], [owner]
    # Only Message Batches: OpenAI batches (`batch_…` ids, api/openai_batches.py) share the
    # table but are listed by their own API.
    conditions.append(f"{id_column} >= 'msgbatch_'")
    if only.status is not None:
        conditions.append(f"b.status = {mark}")
        parameters.append(only.status)
    if only.custom_id is not None:
        found = blob_contains.format(blob="r.custom_ids", needle=mark)
        conditions.append(
            f"EXISTS (SELECT 1 FROM chunk_requests r WHERE r.batch_id = b.id AND {found})"
        )
        # As the custom_ids array holds it: the JSON string, quotes included.
        parameters.append(orjson.dumps(only.custom_id))
    if cursor is not None:
        conditions.append(f"{id_column} {'>' if newer else '<'} {mark}")
        parameters.append(cursor)
    parameters.append(limit)
    statement = (
        f"SELECT {columns} FROM {source} WHERE {' AND '.join(conditions)}"
        f" ORDER BY {id_column} {'ASC' if newer else 'DESC'} LIMIT {mark}"
    )
    return statement, parameters


def usage_report_queries(day: str, mark: str) -> tuple[str, str]:
    """The statements of Store.usage_report: tokens by day and model, then requests by day and
    outcome; `day` is the store's expression of a batch's day (b.created_at in whole days since
    the epoch). Parameters of each: owner, starting_at, ending_at."""
    scope = f"b.owner = {mark} AND b.created_at >= {mark} AND b.created_at < {mark}"
    sums = ", ".join(f"sum(u.{column.strip()})" for column in USAGE_FIELDS.split(","))
    tokens = (
        f"SELECT {day} AS day, u.model, {sums} FROM batch_usage u JOIN batches b"
        f" ON b.id = u.batch_id WHERE {scope} GROUP BY 1, 2 ORDER BY 1, 2"
    )
    outcomes = (
        f"SELECT {day} AS day, sum(b.succeeded), sum(b.errored), sum(b.canceled),"
        f" sum(b.expired) FROM batches b WHERE {scope} GROUP BY 1 ORDER BY 1"
    )
    return tokens, outcomes


def usage_upsert(mark: str) -> str:
    """Adds a part's tokens for one model to its batch's (parameters: batch_id, model, then
    USAGE_FIELDS)."""
    columns = [column.strip() for column in USAGE_FIELDS.split(",")]
    added = ", ".join(f"{column} = batch_usage.{column} + excluded.{column}" for column in columns)
    return (
        f"INSERT INTO batch_usage (batch_id, model, {USAGE_FIELDS})"
        f" VALUES ({', '.join([mark] * (len(columns) + 2))})"
        f" ON CONFLICT (batch_id, model) DO UPDATE SET {added}"
    )


def queue_in_turns(mark: str) -> str:
    """The chunks that may be leased, each with its `position` in the queue; `mark` twice: now.

    Canceled and expired batches' chunks come first (they end at once, without a call); then
    the workspaces take turns, one chunk each, counting the chunks each holds leased already, so
    that one workspace's backlog does not hold back another's; a workspace's own chunks go by
    priority, then lowest chunk number first across its batches (a new batch starts before an
    old one's rest).
    """
    return (
        "SELECT batch_id, chunk_no, row_number() OVER"
        " (ORDER BY urgent DESC, turn, priority DESC, chunk_no, batch_id) AS position"
        " FROM (SELECT c.batch_id, c.chunk_no, c.urgent, c.priority, c.state, c.lease_expires,"
        "   row_number() OVER (PARTITION BY b.owner ORDER BY"
        f"    c.state = 1 AND c.lease_expires >= {mark} DESC,"
        "     c.urgent DESC, c.priority DESC, c.chunk_no, c.batch_id) AS turn"
        "   FROM chunks c JOIN batches b ON b.id = c.batch_id WHERE c.state < 2) AS ranked"
        f" WHERE state = 0 OR lease_expires < {mark}"
    )
