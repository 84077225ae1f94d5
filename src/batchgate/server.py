"""Builds a running batchgate from settings and routes: store, backends, engine and HTTP app."""

from collections.abc import Sequence

from starlette.applications import Starlette

from batchgate.api.app import create_app
from batchgate.api.state import AppState
from batchgate.config import Settings
from batchgate.engine.routing import Router
from batchgate.engine.worker import Engine
from batchgate.route_config import DEFAULT_ROUTES, RouteConfig
from batchgate.storage import open_store


def build_app(
    settings: Settings,
    routes: Sequence[RouteConfig] = DEFAULT_ROUTES,
    with_worker: bool = True,
) -> Starlette:
    store = open_store(settings.database_url)
    engine = Engine(store, settings, Router.from_config(routes, settings)) if with_worker else None
    return create_app(AppState(settings=settings, store=store), engine)
