"""The progress line of --wait: fitted to the terminal, its fields shown whole or not at all."""

import io
from pathlib import Path

import pytest
from anthropic.types.messages import MessageBatchRequestCounts
from rich.cells import cell_len
from rich.console import Console
from rich.progress import Task

from batchgate.cli.client.watch import BatchProgress, ProgressLine, counts_tally, show_tally
from cli.conftest import Cli, batch_ids, write_jsonl
from conftest import simple_request

BATCH_ID = "msgbatch_8DrqUhzZmgLGZzCamwBy4Vaa"
BAR = "━"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def watched(total: int, first: int, then: int, seconds: float) -> Task:
    """A batch's progress after two looks `seconds` apart: `first` done, then `then`."""
    clock = Clock()
    progress = BatchProgress(console=Console(file=io.StringIO()), get_time=clock)
    task_id = progress.add_task(BATCH_ID, outcomes=None)
    for done in (first, then):
        counts = MessageBatchRequestCounts(
            processing=total - done, succeeded=done, errored=0, canceled=0, expired=0
        )
        show_tally(progress, task_id, counts_tally(counts))
        clock.now += seconds
    [task] = progress.tasks
    return task


def drawn(task: Task, width: int) -> list[str]:
    output = io.StringIO()
    Console(file=output, width=width, color_system=None).print(ProgressLine(task))
    return output.getvalue().splitlines()


def fields(line: str) -> set[str]:
    """The line's words, a bar counting as one, whatever its length."""
    return {BAR if word.strip(BAR + "╸╺ ") == "" else word for word in line.split()}


# 10,000 of 30,000 done, 1,000 a second: 20 s to go.
TASK = watched(total=30_000, first=5_000, then=10_000, seconds=5)
DONE, ETA, RATE = "10,000/30,000", "ETA 0:00:20", "1,000 req/s"
OUTCOMES = "10,000 succeeded · 0 errored · 0 canceled · 0 expired"


@pytest.mark.parametrize(
    ("width", "shown", "dropped"),
    [
        # By priority: the done count, the ETA, the outcomes, the rate, then the bar.
        (60, [DONE, ETA], [OUTCOMES, RATE, BAR]),
        (80, [DONE, ETA, RATE], [OUTCOMES, BAR]),  # no room for the outcomes, but for the rate
        (120, [DONE, ETA, OUTCOMES], [RATE, BAR]),
        (200, [DONE, ETA, OUTCOMES, RATE, BAR], []),
    ],
)
def test_the_line_keeps_what_fits_by_priority_and_cuts_no_number(
    width: int, shown: list[str], dropped: list[str]
) -> None:
    [line] = drawn(TASK, width)

    assert cell_len(line.rstrip()) <= width
    assert line.startswith(BATCH_ID + " ")
    assert [field for field in shown if field not in line] == []
    assert [field for field in dropped if field in line] == []
    # Every word is whole: one of the words of the line with room for everything.
    [everything] = drawn(TASK, 1000)
    assert fields(line) <= fields(everything)


def test_a_batch_id_that_leaves_no_room_for_the_count_and_eta_takes_a_line_of_its_own() -> None:
    # 10,000 of 100,000 at 1 a second: 25 hours to go, "10,000/100,000 ETA 25:00:00".
    task = watched(total=100_000, first=9_995, then=10_000, seconds=5)

    lines = drawn(task, 60)

    assert [cell_len(line.rstrip()) <= 60 for line in lines] == [True, True]
    assert lines[0].strip() == BATCH_ID
    assert fields(lines[1]) == {BAR, "10,000/100,000", "1", "req/s", "ETA", "25:00:00"}
    assert lines[1].startswith("  ")


def test_submit_wait_draws_its_progress_within_60_columns(cli: Cli, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "requests.jsonl", [simple_request(f"r{i}") for i in range(5)])

    submitted = cli("submit", str(source), "--wait", "--interval", "0.05", columns=60)

    assert submitted.exit_code == 0, submitted.output
    [batch_id] = batch_ids(submitted.stderr.splitlines()[0])
    [progress] = [line for line in submitted.stderr.splitlines() if "5/5" in line]
    assert progress.startswith(batch_id) and "ETA 0:00:00" in progress
    assert cell_len(progress.rstrip()) <= 60
