"""GET /openapi.json describes the API exactly, and schemathesis finds no way to break it."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from batchgate.api import (
    batch_requests,
    batch_retry,
    batches,
    events,
    openai_batches,
    openai_files,
    openai_retry_body,
    usage,
    webhooks,
)
from conftest import KEY, Server

CHECKS = (
    "not_a_server_error",
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
)
# Test cases per operation: the short run stays well under a minute on a shared machine; the
# long one generates over 10,000 in all (fuzzing stops early on operations with few inputs).
SHORT_CASES = 30
LONG_CASES = 2000
# Every operation but the workspace's event stream.
OPERATIONS = 29


def test_the_document_is_public_and_names_every_route(start_server: Callable[..., Server]) -> None:
    server = start_server(api_keys=KEY, max_requests_per_batch="500")
    response = httpx.get(f"{server.base_url}/openapi.json")
    assert response.status_code == 200, "no key needed"
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"].startswith("3.")

    described = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    served = {
        (route.path, method)
        for route in (
            batches.routes
            + batch_requests.routes
            + batch_retry.routes
            + usage.routes
            + events.routes
            + webhooks.routes
            + openai_files.routes
            + openai_batches.routes
        )
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert described == served
    # The extensions' parameters and bodies, as the handlers read them.
    openai_retry = document["components"]["schemas"]["RetryOpenAIBatch"]["properties"]
    assert tuple(openai_retry) == openai_retry_body.FIELDS
    for path in ("/v1/messages/batches/{batch_id}/results", "/v1/batches/{id}/results"):
        assert "merged" in {
            parameter["name"] for parameter in document["paths"][path]["get"]["parameters"]
        }
    limits = document["components"]["schemas"]["CreateMessageBatch"]["properties"]["requests"]
    assert limits["maxItems"] == 500, "the document states this server's own limits"
    assert set(document["components"]["securitySchemes"]) == {"ApiKey", "Bearer"}


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_schemathesis_finds_no_failure(
    start_server: Callable[..., Server], tmp_path: Path, long_run: bool
) -> None:
    server = start_server(api_keys=KEY)
    report = tmp_path / "schemathesis.json"
    cases = LONG_CASES if long_run else SHORT_CASES
    run = subprocess.run(
        [
            *(sys.executable, "-m", "schemathesis.cli", "run", f"{server.base_url}/openapi.json"),
            *("--checks", ",".join(CHECKS)),
            *("--header", f"x-api-key: {KEY}"),
            # The workspace's event stream never ends; the batch's is tested (ended or 404).
            *("--exclude-operation-id", "workspaceEvents"),
            *("--max-examples", str(cases), "--seed", "7", "--workers", "1"),
            *("--report", "json", "--report-json-path", str(report)),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=3000 if long_run else 240,
    )
    summary = orjson.loads(report.read_bytes())
    assert run.returncode == 0, run.stdout[-6000:]
    assert summary["failures"] == [] and summary["errors"] == []
    assert summary["operations"]["tested"] == OPERATIONS
    generated = summary["test_cases"]["generated"]
    assert generated >= (10_000 if long_run else OPERATIONS * SHORT_CASES), summary["test_cases"]
    assert "unhandled error" not in server.log.read_text()
    print(f"schemathesis: {generated} cases in {summary['running_time']:.1f} s, no failure")
