"""The backend a route names, built from its options.

Upstream backends are imported only when a route uses them: their SDKs cost tens of megabytes
of memory and a second of start-up, which a server on the simulator alone need not pay.
"""

from batchgate.backends.base import Backend
from batchgate.backends.simulator import Simulator
from batchgate.config.routes import RouteConfig
from batchgate.config.settings import Settings


def open_backend(route: RouteConfig, settings: Settings) -> Backend:
    """The backend of `route`; simulator knobs it leaves out come from `settings`."""
    if route.backend == "simulator":
        return Simulator(
            latency_ms=_either(route.latency_ms, settings.simulator_latency_ms),
            fault_rate=_either(route.fault_rate, settings.simulator_fault_rate),
            fault_types=route.fault_types or settings.simulator_fault_types,
        )
    if route.backend == "anthropic":
        from batchgate.backends.anthropic_upstream import AnthropicUpstreamBackend

        assert route.base_url is not None
        return AnthropicUpstreamBackend(
            route.base_url,
            route.api_key,
            route.upstream_model,
            route.timeout_seconds,
            connections=_connections(route, settings),
        )
    if route.backend == "openai":
        from batchgate.backends.openai_chat import OpenAIChatBackend

        assert route.base_url is not None
        return OpenAIChatBackend(
            route.base_url,
            route.api_key,
            route.upstream_model,
            route.timeout_seconds,
            connections=_connections(route, settings),
        )
    from batchgate.backends.local_gguf import LocalGGUFBackend

    assert route.backend == "local" and route.model_path is not None
    return LocalGGUFBackend(route.model_path, route.n_ctx, route.n_threads)


def _connections(route: RouteConfig, settings: Settings) -> int:
    """The route's most requests in flight: its own limit, which the engine's caps."""
    return min(route.max_concurrency or settings.max_concurrency, settings.max_concurrency)


def _either(value: float | None, default: float) -> float:
    return default if value is None else value
