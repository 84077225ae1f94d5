"""The client commands on the oldest and a 2.x official SDK, which differ in their internals.

scripts/bootstrap installs them into .venv/sdk-anthropic-<version>; each run uses one in its own
process.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.conftest import batch_ids, read_jsonl, write_jsonl
from conftest import KEY, Server, simple_request

SDK_ROOT = Path(__file__).parent.parent.parent / ".venv"
CLIENT_APP = Path(__file__).parent / "client_app.py"


@pytest.mark.parametrize("version", ["0.50.0", "2.1.0"])
def test_submit_results_and_retry_work_on_older_sdks(
    faulty_server: Server, tmp_path: Path, version: str
) -> None:
    sdk = SDK_ROOT / f"sdk-anthropic-{version}"
    assert (sdk / "anthropic").is_dir(), "run scripts/bootstrap dev to install the older SDKs"
    environment = {
        **os.environ,
        "PYTHONPATH": str(sdk),
        "ANTHROPIC_BASE_URL": faulty_server.base_url,
        "ANTHROPIC_API_KEY": KEY,
    }

    def batchgate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(CLIENT_APP), *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )

    source = write_jsonl(
        tmp_path / "requests.jsonl", [simple_request(f"r{i}", f"prompt {i}") for i in range(20)]
    )
    output = tmp_path / "results.jsonl"
    submitted = batchgate("submit", str(source), "--wait", "--interval", "0.05", "-o", str(output))
    assert submitted.returncode == 1, submitted.stderr
    errored = {
        line["custom_id"]
        for line in read_jsonl(output.read_text())
        if line["result"]["type"] == "errored"
    }
    batch_id = batch_ids(submitted.stderr)[0]

    texts = batchgate("results", batch_id, "--text", "--type", "errored")
    retried = batchgate("retry", batch_id)

    assert {line.split("\t")[0] for line in texts.stdout.splitlines()} == errored
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.startswith("msgbatch_")
