"""Older official SDKs, which differ on the wire (x-api-key vs Bearer, ?beta=true), end to end.

scripts/bootstrap installs them into .venv/sdk-anthropic-<version>; each runs a script in its own
process.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import KEY, Server

SDK_ROOT = Path(__file__).parent.parent / ".venv"
SCRIPT = """
import anthropic, time
assert anthropic.__version__ == {version!r}, anthropic.__version__
client = anthropic.Anthropic()
for batches in (client.messages.batches, client.beta.messages.batches):
    batch = batches.create(requests=[
        {{"custom_id": "ok", "params": {{"model": "claude-sonnet-4-5-20250929", "max_tokens": 64,
          "messages": [{{"role": "user", "content": "What is AI?"}}]}}}},
        {{"custom_id": "bad", "params": {{"model": "claude-sonnet-4-5-20250929",
          "messages": [{{"role": "user", "content": "no max_tokens"}}]}}}},
    ])
    while batches.retrieve(batch.id).processing_status != "ended":
        time.sleep(0.02)
    found = {{r.custom_id: r.result for r in batches.results(batch.id)}}
    assert found["ok"].type == "succeeded", found
    assert "What is AI" in found["ok"].message.content[0].text
    assert found["bad"].error.error.type == "invalid_request_error"
    assert batch.id in [b.id for b in batches.list(limit=5)]
    assert batches.delete(batch.id).id == batch.id

# batchgate's extensions: sent with extra_*, read back from the models' extra fields.
labeled = client.messages.batches.create(
    requests=[{{"custom_id": "ok", "params": {{"model": "claude-sonnet-4-5-20250929",
        "max_tokens": 64, "messages": [{{"role": "user", "content": "What is AI?"}}]}}}}],
    extra_body={{"metadata": {{"sdk": {version!r}}}, "priority": 2,
                "abort": {{"max_output_tokens": 100000}}}},
    extra_headers={{"Idempotency-Key": "sdk-" + {version!r}}},
)
while (ended := client.messages.batches.retrieve(labeled.id)).processing_status != "ended":
    time.sleep(0.02)
fields = ended.to_dict()
assert fields["metadata"] == {{"sdk": {version!r}}} and fields["priority"] == 2, fields
assert fields["abort"] == {{"max_output_tokens": 100000}} and fields["cancel_reason"] is None
assert fields["usage"]["output_tokens"] > 0 and fields["cost"] is None, fields
assert ended.usage == fields["usage"] and ended.metadata == {{"sdk": {version!r}}}
listed = client.messages.batches.list(extra_query={{"metadata[sdk]": {version!r}}})
assert [b.id for b in listed] == [labeled.id]
print("ok")
"""


@pytest.mark.parametrize("version", ["0.50.0", "2.1.0"])
def test_older_sdk_walks_the_lifecycle(server: Server, version: str) -> None:
    sdk = SDK_ROOT / f"sdk-anthropic-{version}"
    assert (sdk / "anthropic").is_dir(), "run scripts/bootstrap dev to install the older SDKs"
    finished = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(version=version)],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PYTHONPATH": str(sdk),
            "ANTHROPIC_BASE_URL": server.base_url,
            "ANTHROPIC_API_KEY": KEY,
            "PATH": "/usr/bin:/bin",
        },
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "ok"
