"""OpenAI batches in the dashboard, in Chromium: their list with paging, a batch's counts,
timestamps and files, a failed batch's errors by line, cancel, retry and the retry chain, a
read-only key, another workspace's batch, and a Message Batch page's redirect. Batches are made
with the `openai` SDK."""

import json
import re
from pathlib import Path

import openai
from playwright.sync_api import BrowserContext, Page, expect

from openai_batches.conftest import chat_line, wait_until_done
from web.conftest import Dashboard, Screenshots, post_form, sign_in

# A batch of the dashboard's server ends within seconds.
LIVE_TIMEOUT_MS = 30_000
PAGE_SIZE = 50


def _client(dashboard: Dashboard, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{dashboard.server.base_url}/v1", api_key=key or dashboard.blue, max_retries=0
    )


def _input_file(client: openai.OpenAI, lines: list[object] | str) -> str:
    text = lines if isinstance(lines, str) else "".join(json.dumps(line) + "\n" for line in lines)
    return client.files.create(file=("in.jsonl", text.encode()), purpose="batch").id


def _create(client: openai.OpenAI, count: int, prefix: str) -> openai.types.Batch:
    lines = [chat_line(f"{prefix}-{i}", f"Question {i}") for i in range(count)]
    return client.batches.create(
        input_file_id=_input_file(client, lines),
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"run": prefix},
    )


def test_an_openai_batch_page_shows_its_counts_timestamps_and_files(
    page: Page, dashboard: Dashboard, shoot: Screenshots
) -> None:
    client = _client(dashboard)
    batch = wait_until_done(client, _create(client, 40, "shown").id)
    assert batch.status == "completed" and batch.request_counts is not None
    sign_in(page, dashboard, dashboard.blue)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="OpenAI batches").click()
    expect(page).to_have_url(f"{dashboard.url}/openai")
    row = page.locator(f"tr[data-batch-id='{batch.id}']")
    expect(row.locator(".status")).to_have_text("completed")
    expect(row).to_contain_text("gpt-4o-mini")

    row.get_by_role("link", name=batch.id).click()
    expect(page).to_have_url(f"{dashboard.url}/openai/{batch.id}")
    expect(page.get_by_test_id("status")).to_have_text("completed")
    counts = batch.request_counts
    expect(page.get_by_test_id("count-total")).to_have_text(str(counts.total))
    expect(page.get_by_test_id("count-completed")).to_have_text(str(counts.completed))
    expect(page.get_by_test_id("count-failed")).to_have_text(str(counts.failed))
    expect(page.get_by_test_id("model")).to_have_text("gpt-4o-mini")
    for name in ("created_at", "in_progress_at", "finalizing_at", "completed_at"):
        expect(page.get_by_test_id(name)).to_be_visible()
    for name in ("failed_at", "cancelling_at", "cancelled_at", "expired_at"):
        expect(page.get_by_test_id(name)).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Cancel"))).to_have_count(0)
    shoot(page, "openai-batch")

    assert batch.output_file_id and batch.error_file_id and counts.failed
    for name, file_id in (("output", batch.output_file_id), ("error", batch.error_file_id)):
        with page.expect_download() as download:
            page.get_by_test_id(f"{name}-file").click()
        saved = Path(download.value.path()).read_bytes()
        assert saved == client.files.content(file_id).read()
        assert download.value.suggested_filename == f"{batch.id}_{name}.jsonl"


def test_an_openai_batch_page_follows_its_progress_without_reloading(
    page: Page, dashboard: Dashboard
) -> None:
    client = _client(dashboard)
    batch = _create(client, 400, "followed")
    sign_in(page, dashboard, dashboard.blue)
    streams: list[str] = []
    page.on(
        "request",
        lambda request: (
            streams.append(request.url.split("?")[0])
            if request.resource_type == "eventsource"
            else None
        ),
    )
    page.goto(f"{dashboard.url}/openai/{batch.id}")
    page.evaluate("window.notReloaded = true")
    first = int(page.get_by_test_id("count-completed").inner_text())
    # Its counts move while it is still in progress: its batch.progress events refresh the page.
    page.wait_for_function(
        """first => {
            const shown = (id) => document.querySelector(`[data-testid=${id}]`).textContent;
            return shown("status") === "in_progress" && Number(shown("count-completed")) > first;
        }""",
        arg=first,
        timeout=LIVE_TIMEOUT_MS,
    )
    expect(page.get_by_test_id("status")).to_have_text("completed", timeout=LIVE_TIMEOUT_MS)
    counts = client.batches.retrieve(batch.id).request_counts
    assert counts is not None
    expect(page.get_by_test_id("count-completed")).to_have_text(str(counts.completed))
    expect(page.get_by_test_id("count-failed")).to_have_text(str(counts.failed))
    assert page.evaluate("window.notReloaded") is True
    # The batch's own stream, closed after its end.
    assert streams == [f"{dashboard.url}/openai/{batch.id}/events"]
    expect(page.locator("[data-events]")).to_have_attribute("data-stream", "closed")


def test_a_failed_openai_batch_shows_the_errors_of_its_lines(
    page: Page, dashboard: Dashboard, shoot: Screenshots
) -> None:
    client = _client(dashboard)
    good = chat_line("a", "Hi")
    text = "\n".join(
        [
            json.dumps(good),
            '{"custom_id": "b", "method": "POST"',  # cut short
            json.dumps(good),  # custom_id "a" again
            json.dumps(chat_line("c", "Hi", model="another-model")),
        ]
    )
    failed = client.batches.create(
        input_file_id=_input_file(client, text),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    assert failed.status == "failed"
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/openai/{failed.id}")
    expect(page.get_by_test_id("status")).to_have_text("failed")
    expect(page.get_by_test_id("failed_at")).to_be_visible()
    rows = page.get_by_test_id("input-errors").locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.locator("td:first-child")).to_have_text(["2", "3", "4"])
    expect(rows.locator("td:nth-child(2)")).to_have_text(
        ["invalid_json_line", "duplicate_custom_id", "mismatched_model"]
    )
    expect(page.get_by_test_id("output-file")).to_have_count(0)
    shoot(page, "openai-failed")
    page.get_by_role("link", name="OpenAI batches").first.click()
    expect(page.locator(f"tr[data-batch-id='{failed.id}'] .status")).to_have_text("failed")
    shoot(page, "openai-batches")


def test_cancel_an_openai_batch_from_its_page(page: Page, dashboard: Dashboard) -> None:
    client = _client(dashboard)
    batch = _create(client, 2000, "long")
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/openai/{batch.id}")
    expect(page.get_by_test_id("status")).to_have_text("in_progress")
    page.get_by_role("button", name=re.compile(r"^Cancel \(\d+ requests\)")).click()
    expect(page.get_by_test_id("status")).to_have_text(re.compile("cancelling|cancelled"))
    expect(page.get_by_test_id("cancelling_at")).to_be_visible()
    # Refreshed by the batch's batch.cancelled event, without a reload.
    page.evaluate("window.notReloaded = true")
    ended = wait_until_done(client, batch.id)
    assert ended.status == "cancelled"
    expect(page.get_by_test_id("status")).to_have_text("cancelled", timeout=LIVE_TIMEOUT_MS)
    expect(page.get_by_test_id("cancelled_at")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True


def test_retry_an_openai_batchs_failed_requests_from_its_page(
    page: Page, dashboard: Dashboard, shoot: Screenshots
) -> None:
    client = _client(dashboard)
    batch = wait_until_done(client, _create(client, 30, "retried").id)
    assert batch.request_counts is not None and batch.error_file_id is not None
    failed = batch.request_counts.failed
    assert failed
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/openai/{batch.id}")
    page.get_by_role("button", name=f"Retry failed ({failed} requests)").click()
    expect(page).not_to_have_url(f"{dashboard.url}/openai/{batch.id}")
    retry_id = page.url.rsplit("/", 1)[-1]
    retry = client.batches.retrieve(retry_id)
    assert retry.model_extra is not None and retry.model_extra["parent_batch_id"] == batch.id
    assert retry.request_counts is not None and retry.request_counts.total == failed
    expect(page.locator(".lineage")).to_contain_text(f"Retry of {batch.id}")
    shoot(page, "openai-retry")

    # The retry's failures fail again (the simulator's faults follow the params).
    wait_until_done(client, retry_id)
    page.get_by_test_id("parent-link").click()
    expect(page).to_have_url(f"{dashboard.url}/openai/{batch.id}")
    expect(page.get_by_test_id("retry-link")).to_have_text(retry_id)
    expect(page.get_by_test_id("merged")).to_have_text(
        "Over the retry chain, each request's latest outcome:"
        f" {batch.request_counts.completed} completed, {failed} failed."
    )
    # A batch is retried once: its retry is the one to retry next.
    expect(page.get_by_role("button", name=re.compile("^Retry failed"))).to_have_count(0)
    page.get_by_test_id("retry-link").click()
    expect(page.get_by_role("button", name=f"Retry failed ({failed} requests)")).to_be_visible()


def test_a_read_only_key_sees_no_retry_and_is_refused_if_it_posts_one(
    page: Page, context: BrowserContext, dashboard: Dashboard
) -> None:
    client = _client(dashboard)
    batch = wait_until_done(client, _create(client, 30, "kept").id)
    assert batch.request_counts is not None and batch.request_counts.failed
    sign_in(page, dashboard, dashboard.viewer)
    page.goto(f"{dashboard.url}/openai/{batch.id}")
    expect(page.get_by_test_id("status")).to_have_text("completed")
    expect(page.get_by_role("button", name=re.compile("^Retry"))).to_have_count(0)
    assert post_form(context, f"{dashboard.url}/openai/{batch.id}/retry") == 403
    assert client.batches.retrieve(batch.id).model_extra == {}


def test_a_read_only_key_sees_no_cancel_and_is_refused_if_it_posts_one(
    page: Page, context: BrowserContext, dashboard: Dashboard
) -> None:
    client = _client(dashboard)
    batch = _create(client, 2000, "watched")
    sign_in(page, dashboard, dashboard.viewer)
    page.goto(f"{dashboard.url}/openai/{batch.id}")
    expect(page.get_by_test_id("status")).to_have_text("in_progress")
    expect(page.get_by_role("button", name=re.compile("^Cancel"))).to_have_count(0)
    assert post_form(context, f"{dashboard.url}/openai/{batch.id}/cancel") == 403
    assert client.batches.retrieve(batch.id).cancelling_at is None
    client.batches.cancel(batch.id)


def test_another_workspaces_openai_batch_is_a_404_page(page: Page, dashboard: Dashboard) -> None:
    client = _client(dashboard)
    batch = _create(client, 1, "private")
    sign_in(page, dashboard, dashboard.red)
    response = page.goto(f"{dashboard.url}/openai/{batch.id}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    for name in ("input", "output"):
        download = page.request.get(f"{dashboard.url}/openai/{batch.id}/{name}.jsonl")
        assert download.status == 404
    page.goto(f"{dashboard.url}/openai")
    expect(page.locator(f"tr[data-batch-id='{batch.id}']")).to_have_count(0)


def test_an_openai_batch_under_the_batches_pages_redirects_to_its_own(
    page: Page, dashboard: Dashboard
) -> None:
    batch = _create(_client(dashboard), 1, "moved")
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/batches/{batch.id}")
    expect(page).to_have_url(f"{dashboard.url}/openai/{batch.id}")
    expect(page.get_by_role("heading", name=batch.id)).to_be_visible()


def test_the_list_pages_newest_first_both_ways(page: Page, dashboard: Dashboard) -> None:
    client = _client(dashboard)
    input_file = _input_file(client, [chat_line("a", "Hi")])
    created = [
        client.batches.create(
            input_file_id=input_file, endpoint="/v1/chat/completions", completion_window="24h"
        ).id
        for _ in range(PAGE_SIZE + 1)
    ]
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/openai")
    rows = page.locator("tr[data-batch-id]")
    expect(rows).to_have_count(PAGE_SIZE)
    expect(rows.first).to_have_attribute("data-batch-id", created[-1])
    page.get_by_role("link", name="Older →").click()
    expect(page.locator(f"tr[data-batch-id='{created[0]}']")).to_be_visible()
    expect(rows.first).to_have_attribute("data-batch-id", created[0])
    page.get_by_role("link", name="← Newer").click()
    expect(rows).to_have_count(PAGE_SIZE)
    expect(rows.first).to_have_attribute("data-batch-id", created[-1])
