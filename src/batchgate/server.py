"""Builds a running batchgate from settings: store, backends, engine and HTTP app."""

from starlette.applications import Starlette

from batchgate.api.app import create_app
from batchgate.api.state import AppState
from batchgate.backends.base import Backend
from batchgate.backends.simulator import Simulator
from batchgate.config import Settings
from batchgate.engine.worker import Engine
from batchgate.storage import open_store


def build_app(settings: Settings, with_worker: bool = True) -> Starlette:
    store = open_store(settings.database_url)
    simulator = Simulator(
        latency_ms=settings.simulator_latency_ms,
        fault_rate=settings.simulator_fault_rate,
        fault_types=settings.simulator_fault_types,
    )

    def backend_for(model: str) -> Backend:
        return simulator

    engine = Engine(store, settings, backend_for) if with_worker else None
    return create_app(AppState(settings=settings, store=store), engine)
