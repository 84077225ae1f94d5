"""The backends page's numbers: each route's flow control and outcomes, read from the same
exposition /metrics serves (this process's, or the host's in multiprocess mode)."""

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from batchgate.observability import metrics


@dataclass(slots=True)
class RouteNumbers:
    """One route (its model glob) as the engines on this host see it."""

    route: str
    queued: float = 0
    concurrency_limit: float | None = None
    calls: float = 0
    latency_seconds: float = 0
    retries: float = 0
    finished: dict[str, float] = field(default_factory=dict)  # by result type
    upstream_errors: dict[str, float] = field(default_factory=dict)  # by error type

    @property
    def mean_latency_ms(self) -> float | None:
        return 1000 * self.latency_seconds / self.calls if self.calls else None


@dataclass(frozen=True, slots=True)
class BackendNumbers:
    in_flight: float
    routes: list[RouteNumbers]


def backend_numbers() -> BackendNumbers:
    """The routes that have done anything since this process (or host) started, by name."""
    routes: dict[str, RouteNumbers] = {}
    in_flight = 0.0

    def of(route: str) -> RouteNumbers:
        return routes.setdefault(route, RouteNumbers(route))

    exposition = metrics.render({}).decode()
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            route = sample.labels.get("route")
            if sample.name == "batchgate_requests_in_flight":
                in_flight += sample.value
            elif not route:
                continue
            elif sample.name == "batchgate_requests_queued":
                of(route).queued += sample.value
            elif sample.name == "batchgate_route_concurrency_limit":
                of(route).concurrency_limit = (of(route).concurrency_limit or 0) + sample.value
            elif sample.name == "batchgate_backend_latency_seconds_count":
                of(route).calls += sample.value
            elif sample.name == "batchgate_backend_latency_seconds_sum":
                of(route).latency_seconds += sample.value
            elif sample.name == "batchgate_retries_total":
                of(route).retries += sample.value
            elif sample.name == "batchgate_requests_finished_total":
                _add(of(route).finished, sample.labels["result"], sample.value)
            elif sample.name == "batchgate_upstream_errors_total":
                _add(of(route).upstream_errors, sample.labels["error_type"], sample.value)
    return BackendNumbers(in_flight, sorted(routes.values(), key=lambda numbers: numbers.route))


def _add(counts: dict[str, float], kind: str, value: float) -> None:
    counts[kind] = counts.get(kind, 0) + value
