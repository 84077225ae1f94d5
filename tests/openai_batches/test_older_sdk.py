"""An old `openai` 1.x (1.40, from before cursor pages on files), whose wire habits differ from
the current SDK's, walks the batch guide in its own process (scripts/bootstrap installs it
into .venv/sdk-openai-<version> from tests/older_sdks/)."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import KEY, Server

SDK_ROOT = Path(__file__).parent.parent.parent / ".venv"
SCRIPT = """
import io, json, time
import openai
assert openai.__version__ == {version!r}, openai.__version__
client = openai.OpenAI(max_retries=0)
lines = [
    {{"custom_id": f"r{{i}}", "method": "POST", "url": "/v1/chat/completions",
      "body": {{"model": "gpt-4o-mini", "max_tokens": 50,
               "messages": [{{"role": "user", "content": f"Question {{i}}"}}]}}}}
    for i in range(3)
]
data = "".join(json.dumps(line) + "\\n" for line in lines).encode()
uploaded = client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch")
assert uploaded.bytes == len(data) and uploaded.status == "processed"
batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                              completion_window="24h")
while (batch := client.batches.retrieve(batch.id)).status not in ("completed", "failed"):
    time.sleep(0.05)
assert batch.status == "completed" and batch.request_counts.completed == 3, batch
output = [json.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()]
assert sorted(line["custom_id"] for line in output) == ["r0", "r1", "r2"]
assert all(line["response"]["body"]["object"] == "chat.completion" for line in output)
assert batch.id in [b.id for b in client.batches.list(limit=1)]
assert uploaded.id in [f.id for f in client.files.list()]
assert client.files.delete(uploaded.id).deleted
try:
    client.batches.cancel(batch.id)
except openai.BadRequestError:
    pass
else:
    raise AssertionError("a completed batch cannot be cancelled")
print("ok")
"""


@pytest.mark.parametrize("version", ["1.40.0"])
def test_an_older_openai_sdk_walks_the_batch_guide(server: Server, version: str) -> None:
    sdk = SDK_ROOT / f"sdk-openai-{version}"
    assert (sdk / "openai").is_dir(), "run scripts/bootstrap dev to install the older SDKs"
    finished = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(version=version)],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PYTHONPATH": str(sdk),
            "OPENAI_BASE_URL": f"{server.base_url}/v1",
            "OPENAI_API_KEY": KEY,
            "PATH": "/usr/bin:/bin",
        },
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "ok"
