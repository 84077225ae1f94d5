"""`--wait` and `ls --watch` against a batchgate server: woken by its workspace's event stream
(GET /v1/events) instead of polling. Against Anthropic's API, which has no such stream, the
watcher polls.

httpx is imported where it is used, like the SDK (cli/client/__init__.py): not at each launch."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    import httpx

# Without events (a stream that broke, say) the watcher still looks this often.
FALLBACK_SECONDS = 15.0


class EventFeed:
    """Reads the stream on a thread; `news` is set at each event of a watched batch (of any
    batch if `batch_ids` is None)."""

    def __init__(self, response: httpx.Response, batch_ids: set[str] | None) -> None:
        self._response = response
        self._batch_ids = batch_ids
        self.news = threading.Event()
        self._thread = threading.Thread(target=self._read, name="event-feed", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        import httpx

        try:
            for line in self._response.iter_lines():
                if line.startswith("data:"):
                    event = orjson.loads(line.removeprefix("data:"))
                    watched = self._batch_ids
                    if watched is None or event.get("data", {}).get("id") in watched:
                        self.news.set()
        except (httpx.HTTPError, orjson.JSONDecodeError):
            pass  # the watcher falls back to polling
        # Ended: the watcher looks once more, then polls.
        self.news.set()

    def wait(self, interval: float) -> None:
        """Until an event of a watched batch, or FALLBACK_SECONDS (at least `interval`)."""
        self.news.wait(max(interval, FALLBACK_SECONDS) if self._thread.is_alive() else interval)
        self.news.clear()


@contextlib.contextmanager
def event_feed(
    events_url: str, auth_headers: Mapping[str, str], batch_ids: set[str] | None
) -> Iterator[EventFeed | None]:
    """The feed of a batchgate server's events (`events_url`, its GET /v1/events, asked with
    an SDK client's `auth_headers`), or None where the server has no stream."""
    import httpx

    http = httpx.Client(
        headers={**auth_headers, "accept": "text/event-stream"},
        timeout=httpx.Timeout(10, read=None),
    )
    try:
        try:
            response = http.send(http.build_request("GET", events_url), stream=True)
        except httpx.HTTPError:
            yield None
            return
        try:
            streams = response.status_code == 200 and response.headers.get(
                "content-type", ""
            ).startswith("text/event-stream")
            yield EventFeed(response, batch_ids) if streams else None
        finally:
            response.close()
    finally:
        http.close()
