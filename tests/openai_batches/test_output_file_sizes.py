"""An ended batch's output and error files list the size of the content they download, whether
its requests all succeeded, all failed, or some of each (the store sums the first two cases'
sizes without reading the lines; the third reads each line's status)."""

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Server
from openai_batches.conftest import chat_line, jsonl, openai_client, wait_until_done, write_jsonl


def good(custom_id: str) -> dict[str, object]:
    return chat_line(custom_id, f"Tell me about {custom_id}.")


def bad(custom_id: str) -> dict[str, object]:
    # Valid for OpenAI, but a Messages backend gives one answer: an error line (400).
    return chat_line(custom_id, "Two answers, please.", n=2)


@pytest.mark.parametrize(
    ("lines", "output_ids", "error_ids"),
    [
        ([good("a"), good("b"), good("c")], ["a", "b", "c"], []),
        ([bad("a"), bad("b")], [], ["a", "b"]),
        ([good("a"), bad("b"), good("c"), bad("d")], ["a", "c"], ["b", "d"]),
    ],
    ids=["all-succeeded", "all-failed", "mixed"],
)
def test_each_file_lists_the_size_of_its_content(
    tmp_path: Path,
    start_on_store: Callable[..., Server],
    lines: list[dict[str, object]],
    output_ids: list[str],
    error_ids: list[str],
) -> None:
    client = openai_client(start_on_store())
    with write_jsonl(tmp_path / "in.jsonl", lines).open("rb") as upload:
        input_file = client.files.create(file=upload, purpose="batch")
    created = client.batches.create(
        input_file_id=input_file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch = wait_until_done(client, created.id)
    assert batch.status == "completed"

    for file_id, expected_ids in (
        (batch.output_file_id, output_ids),
        (batch.error_file_id, error_ids),
    ):
        if not expected_ids:
            assert file_id is None
            continue
        assert file_id is not None
        content = client.files.content(file_id).content
        assert sorted(line["custom_id"] for line in jsonl(content.decode())) == expected_ids
        assert client.files.retrieve(file_id).bytes == len(content)
