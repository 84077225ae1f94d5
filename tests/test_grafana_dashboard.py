"""The Grafana dashboard (docs/grafana): importable, and every metric it queries exists."""

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from conftest import Server

DOCS = Path(__file__).parent.parent / "docs"
DASHBOARD = DOCS / "grafana" / "batchgate-dashboard.json"
METRIC_NAME = re.compile(r"\bbatchgate_\w+")
# The names a metric goes by, in queries and in the docs, by its type: a histogram by its own
# name too.
SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("", "_bucket", "_count", "_sum"),
}


def exported_names(server: Server) -> set[str]:
    """Every name /metrics answers for, whether or not a sample has been recorded yet."""
    text = httpx.get(f"{server.base_url}/metrics").text
    return {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in SAMPLE_SUFFIXES.get(family.type, ("",))
    }


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_dashboard_is_importable_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"]
    assert isinstance(dashboard["schemaVersion"], int)
    [variable] = dashboard["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in panels:
        assert panel["type"] == "timeseries" and panel["title"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["refId"] and METRIC_NAME.search(target["expr"]), target
    titles = {panel["title"] for panel in panels}
    assert {
        "Throughput by result",
        "Upstream errors and retries by route",
        "HTTP p99 latency by route",
        "Requests in flight and queued",
        "AIMD concurrency limit by route",
    } <= titles


def test_every_metric_the_dashboard_and_the_docs_name_is_exported(
    start_server: Callable[..., Server],
) -> None:
    exported = exported_names(start_server())
    dashboard = json.loads(DASHBOARD.read_text())
    named = {
        "the dashboard": {
            name for query in queries(dashboard) for name in METRIC_NAME.findall(query)
        },
        "operations.md": set(METRIC_NAME.findall((DOCS / "operations.md").read_text())),
    }
    for where, names in named.items():
        assert names, where
        assert names <= exported, f"{where} names metrics /metrics lacks: {names - exported}"
