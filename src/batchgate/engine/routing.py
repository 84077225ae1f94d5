"""Which route serves a model: the first `[[routes]]` glob that matches `params.model`."""

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from batchgate.backends.base import Backend
from batchgate.backends.factory import open_backend
from batchgate.backends.simulator import Simulator
from batchgate.config.routes import RouteConfig
from batchgate.config.settings import Settings, workspace_weights
from batchgate.engine.flow import FlowControl, FlowLimits
from batchgate.errors import RequestError
from batchgate.lifecycle.workspaces import workspace_owner

# Models seen are remembered, to match each glob once per model rather than once per request;
# past this many distinct names the memory starts over.
_REMEMBERED_MODELS = 4096


@dataclass(frozen=True)
class Route:
    config: RouteConfig
    backend: Backend
    # None only for a simulator route without limits: its calls never fail transiently, so they
    # skip flow control and retries altogether.
    flow: FlowControl | None
    # Set when the route answers without ever waiting (the zero-latency simulator): the engine
    # then calls its `reply` in line, which costs a fraction of an awaited call.
    answer_at_once: Simulator | None = None


def open_route(
    config: RouteConfig, settings: Settings, weights: Mapping[str, int] | None = None
) -> Route:
    """The route of `config`; `weights` are the workspaces' turns (owner tag → weight)."""
    backend = open_backend(config, settings)
    flow = None
    if config.backend != "simulator" or config.has_limits:
        flow = FlowControl(
            FlowLimits(
                max_concurrency=config.max_concurrency or settings.max_concurrency,
                requests_per_minute=config.requests_per_minute,
                input_tokens_per_minute=config.input_tokens_per_minute,
                output_tokens_per_minute=config.output_tokens_per_minute,
            ),
            name=config.model,
            weights=weights,
        )
    answer_at_once = None
    if flow is None and isinstance(backend, Simulator) and backend.answers_at_once:
        answer_at_once = backend
    return Route(config, backend, flow, answer_at_once)


class Router:
    def __init__(self, routes: Sequence[Route]) -> None:
        self._routes = tuple(routes)
        self.answers_any_at_once = any(route.answer_at_once for route in self._routes)
        self._by_model: dict[str, Route | None] = {}

    @classmethod
    def from_config(cls, configs: Sequence[RouteConfig], settings: Settings) -> "Router":
        weights = {
            workspace_owner(name): weight
            for name, weight in workspace_weights(settings.workspace_weights).items()
        }
        return cls([open_route(config, settings, weights) for config in configs])

    def route_for(self, model: str) -> Route:
        """The route serving `model`; a `not_found_error` when no route matches it."""
        try:
            route = self._by_model[model]
        except KeyError:
            route = self._match(model)
        if route is None:
            raise RequestError(
                "not_found_error",
                f"model: {model} (no route of this batchgate serves this model)",
            )
        return route

    @property
    def routes(self) -> tuple[Route, ...]:
        return self._routes

    async def aclose(self) -> None:
        """Closes every route's connections: the engine has stopped."""
        for route in self._routes:
            await route.backend.aclose()

    def withdraw(self, batch_id: str) -> None:
        """The batch was canceled: its requests waiting on any route stop waiting."""
        for route in self._routes:
            if route.flow is not None:
                route.flow.withdraw(batch_id)

    def _match(self, model: str) -> Route | None:
        if len(self._by_model) >= _REMEMBERED_MODELS:
            self._by_model.clear()
        route = next(
            (route for route in self._routes if fnmatch.fnmatchcase(model, route.config.model)),
            None,
        )
        self._by_model[model] = route
        return route
