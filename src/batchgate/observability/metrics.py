"""The Prometheus metrics batchgate exports on `GET /metrics` (docs/operations.md).

Definitions live here; the engine, the flow control and the HTTP layer update them. With
`PROMETHEUS_MULTIPROC_DIR` set (prometheus-client's multiprocess mode), every process on the
host writes its values to files there and a scrape of any one of them sums them all up.
"""

import os
from collections.abc import Iterable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE_LATEST"]

BATCH_STATUSES = ("in_progress", "canceling", "ended")

REQUESTS_FINISHED = Counter(
    "batchgate_requests_finished_total",
    "Requests whose result was committed, by result type and route (its model glob; empty for"
    " requests that never reached one: canceled or expired before their turn, invalid params).",
    ["result", "route"],
)
REQUESTS_IN_FLIGHT = Gauge(
    "batchgate_requests_in_flight",
    "Engine concurrency slots in use (requests running on a backend), sampled every dispatch turn.",
    multiprocess_mode="livesum",
)
REQUESTS_QUEUED = Gauge(
    "batchgate_requests_queued",
    "Requests leased and waiting for their turn on a route's flow control.",
    ["route"],
    multiprocess_mode="livesum",
)
BACKEND_LATENCY = Histogram(
    "batchgate_backend_latency_seconds",
    "Duration of each backend call on a route with flow control, failed ones included.",
    ["route"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320),
)
UPSTREAM_ERRORS = Counter(
    "batchgate_upstream_errors_total",
    "Failed backend calls on a route with flow control, by error type.",
    ["route", "error_type"],
)
RETRIES = Counter(
    "batchgate_retries_total",
    "Backend calls retried after a transient failure, by route.",
    ["route"],
)
ROUTE_CONCURRENCY_LIMIT = Gauge(
    "batchgate_route_concurrency_limit",
    "The route's current AIMD concurrency limit (summed over the processes of a host).",
    ["route"],
    multiprocess_mode="livesum",
)
HTTP_DURATION = Histogram(
    "batchgate_http_request_duration_seconds",
    "HTTP requests by method, route template and status.",
    ["method", "route_template", "status"],
)
CREATE_BYTES = Counter(
    "batchgate_create_bytes_total", "Bytes of create bodies accepted into batches."
)
RESULTS_BYTES = Counter("batchgate_results_bytes_total", "Bytes of results streamed to clients.")
GC_PAUSES = Histogram(
    "batchgate_gc_pause_seconds",
    "Garbage collections in a process that runs an engine, by generation (0 youngest, 2 full):"
    " each pauses every thread of the process, the API's included.",
    ["generation"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
WEBHOOK_ATTEMPTS = Counter(
    "batchgate_webhook_attempts_total",
    "Webhook delivery attempts by what came of the delivery: delivered, retry (tried again"
    " later) or failed (given up, or the endpoint disabled).",
    ["outcome"],
)


class _Batches(Collector):
    """`batchgate_batches{status}`: counted in the store at scrape time, not kept in memory."""

    def __init__(self, counts: Mapping[str, int]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "batchgate_batches", "Batches in the store by status.", labels=["status"]
        )
        for status in BATCH_STATUSES:
            family.add_metric([status], self._counts.get(status, 0))
        yield family


class _ThisProcess(Collector):
    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def render(batch_counts: Mapping[str, int]) -> bytes:
    """The exposition text of a scrape: this process's metrics, or the host's in multiprocess
    mode, plus the batches by status."""
    registry = CollectorRegistry(auto_describe=False)
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    registry.register(_Batches(batch_counts))
    return generate_latest(registry)


def process_exiting() -> None:
    """In multiprocess mode, drops this process's live gauges from the host's sums."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
