"""The "Retry failed" forms in Chromium: choosing what a retry takes, on a Message Batch's page
(result types, error types; the canceled ones of a batch whose failures are all canceled) and on
an OpenAI batch's (status codes and classes, error types, cancelled and expired); bad values are
a 400 page that creates nothing. The dashboard's server
fails a third of the requests with invalid_request_error (an OpenAI line's 400)."""

import itertools
import json
import re
import sqlite3
import time

import anthropic
import openai
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from batchgate.backends.simulator import Simulator
from batchgate.errors import RequestError
from conftest import simple_request, wait_until_ended
from openai_batches.conftest import chat_line, wait_until_done
from web.conftest import Dashboard, Screenshots, sign_in


def _openai(dashboard: Dashboard) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{dashboard.server.base_url}/v1", api_key=dashboard.blue, max_retries=0
    )


def _ended_openai_batch(client: openai.OpenAI, prefix: str) -> openai.types.Batch:
    lines = "".join(
        json.dumps(chat_line(f"{prefix}-{i}", f"Question {i}")) + "\n" for i in range(30)
    )
    upload = client.files.create(file=("in.jsonl", lines.encode()), purpose="batch")
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    ended = wait_until_done(client, batch.id)
    assert ended.request_counts is not None and ended.request_counts.failed
    return ended


def _box(page: Page, name: str) -> Locator:
    """The checkbox of a result type, labelled with its count: `errored (5)`."""
    return page.get_by_role("checkbox", name=re.compile(rf"^{name} \(\d+\)$"))


def _post_retry(context: BrowserContext, url: str, form: dict[str, str]) -> tuple[int, str]:
    token = next(c["value"] for c in context.cookies() if c["name"] == "batchgate_csrf")
    response = context.request.post(
        f"{url}/retry", form={"csrf": token, "chosen": "1", **form}, max_redirects=0
    )
    return response.status, response.text()


def test_an_openai_batchs_retry_form_chooses_by_status_and_error_type(
    page: Page, dashboard: Dashboard, shoot: Screenshots
) -> None:
    client = _openai(dashboard)
    batch = _ended_openai_batch(client, "chosen")
    assert batch.request_counts is not None and batch.error_file_id is not None
    failed = batch.request_counts.failed
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/openai/{batch.id}")
    page.get_by_text("Choose what to retry").click()
    # The defaults are today's: any failed status, any error type, cancelled and expired.
    expect(page.get_by_label("4xx")).not_to_be_checked()
    expect(page.get_by_label("5xx")).not_to_be_checked()
    expect(page.get_by_role("checkbox", name="cancelled", exact=True)).to_be_checked()
    expect(page.get_by_role("checkbox", name="expired", exact=True)).to_be_checked()
    shoot(page, "openai-retry-form")

    # Its failures are 400s: server errors match nothing, and nothing is made.
    page.get_by_label("5xx").check()
    page.get_by_role("button", name=f"Retry failed ({failed} requests)").click()
    expect(page.get_by_text("there is nothing to retry")).to_be_visible()
    assert client.batches.retrieve(batch.id).model_extra == {}

    page.goto(f"{dashboard.url}/openai/{batch.id}")
    page.get_by_text("Choose what to retry").click()
    page.get_by_label("codes").fill("400")
    page.get_by_label("Error types, of the failed answers").fill("invalid_request_error")
    page.get_by_role("checkbox", name="cancelled", exact=True).uncheck()
    page.get_by_role("button", name=f"Retry failed ({failed} requests)").click()
    expect(page.locator(".lineage")).to_contain_text(f"Retry of {batch.id}")
    retry = client.batches.retrieve(page.url.rsplit("/", 1)[-1])
    assert retry.model_extra is not None and retry.model_extra["parent_batch_id"] == batch.id
    assert retry.input_file_id is not None
    retried = {
        json.loads(line)["custom_id"]
        for line in client.files.content(retry.input_file_id).text.splitlines()
    }
    errors = client.files.content(batch.error_file_id).text.splitlines()
    assert retried == {json.loads(line)["custom_id"] for line in errors}


def test_bad_openai_retry_form_values_are_a_400_page_and_make_nothing(
    page: Page, context: BrowserContext, dashboard: Dashboard
) -> None:
    client = _openai(dashboard)
    batch = _ended_openai_batch(client, "refused")
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/openai/{batch.id}")
    url = f"{dashboard.url}/openai/{batch.id}"

    for form, named in (
        ({"status_codes": "abc"}, "status_codes"),
        ({"status_class": "6xx"}, "status_codes"),
        ({"include_cancelled": "maybe"}, "include_cancelled"),
    ):
        status, shown = _post_retry(context, url, form)
        assert status == 400, form
        assert named in shown
    assert client.batches.retrieve(batch.id).model_extra == {}


def test_a_message_batchs_retry_form_chooses_by_result_and_error_type(
    page: Page, context: BrowserContext, dashboard: Dashboard
) -> None:
    client = dashboard.client()
    batch_id = dashboard.create(30, "typed")
    ended = wait_until_ended(client, batch_id)
    errored = ended.request_counts.errored
    assert errored
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/batches/{batch_id}")
    page.get_by_text("Choose what to retry").click()
    expect(_box(page, "errored")).to_be_checked()
    expect(_box(page, "expired")).to_be_checked()
    expect(_box(page, "canceled")).not_to_be_checked()

    # Its errors are invalid_request_error: another type matches nothing, and nothing is made.
    page.get_by_label("Error types, of the errored ones").fill("overloaded_error")
    page.get_by_role("button", name=re.compile("^Retry failed")).click()
    expect(page.get_by_role("alert")).to_contain_text("has a result to retry")
    for form in ({"result_type": "bogus"}, {}):
        status, shown = _post_retry(context, f"{dashboard.url}/batches/{batch_id}", form)
        assert status == 400
        assert "bogus" in shown if form else "Choose at least one kind of result" in shown
    extra = client.messages.batches.retrieve(batch_id).model_extra
    assert extra is not None and "retry_batch_ids" not in extra  # never retried

    page.goto(f"{dashboard.url}/batches/{batch_id}")
    page.get_by_text("Choose what to retry").click()
    _box(page, "expired").uncheck()
    page.get_by_label("Error types, of the errored ones").fill("invalid_request_error")
    page.get_by_role("button", name=re.compile("^Retry failed")).click()
    expect(page.locator(".lineage")).to_contain_text(f"Retry of {batch_id}")
    child = client.messages.batches.retrieve(page.url.rsplit("/", 1)[-1])
    counts = child.request_counts
    assert counts.processing + counts.succeeded + counts.errored == errored


def _never_failing(count: int, prefix: str) -> list[dict[str, object]]:
    """Requests that the dashboard's simulator answers (it fails a request by its params' hash)."""
    simulator = Simulator(fault_rate=0.3, fault_types=("invalid_request_error",))
    requests: list[dict[str, object]] = []
    for i in itertools.count():
        request = simple_request(f"{prefix}-{i}", f"Question {i}")
        try:
            simulator.reply(request["params"])  # type: ignore[arg-type]
        except RequestError:
            continue
        requests.append(request)
        if len(requests) == count:
            return requests
    raise AssertionError("unreachable")


def test_a_batch_whose_failed_requests_are_all_canceled_offers_their_retry(
    page: Page, dashboard: Dashboard
) -> None:
    client = dashboard.client()
    requests = _never_failing(400, "stopped")
    batch_id = client.messages.batches.create(requests=requests).id  # type: ignore[arg-type]
    client.messages.batches.cancel(batch_id)
    counts = wait_until_ended(client, batch_id).request_counts
    assert (counts.errored, counts.expired) == (0, 0) and counts.canceled
    # The API's default retry takes none of them; one of the canceled results retries them.
    with pytest.raises(anthropic.BadRequestError, match="has a result to retry"):
        client.post(f"/v1/messages/batches/{batch_id}/retry", cast_to=object)

    sign_in(page, dashboard, dashboard.viewer)
    page.goto(f"{dashboard.url}/batches/{batch_id}")
    expect(page.get_by_test_id("status")).to_have_text("ended")
    expect(page.get_by_role("button", name=re.compile("^Retry"))).to_have_count(0)
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/batches/{batch_id}")
    page.get_by_text("Choose what to retry").click()
    expect(_box(page, "canceled")).to_be_checked()
    expect(_box(page, "errored")).not_to_be_checked()
    expect(_box(page, "expired")).not_to_be_checked()
    page.get_by_role("button", name=f"Retry failed ({counts.canceled} requests)").click()
    expect(page.locator(".lineage")).to_contain_text(f"Retry of {batch_id}")
    child = wait_until_ended(client, page.url.rsplit("/", 1)[-1])
    assert child.request_counts.succeeded == counts.canceled


def test_a_batch_without_failed_requests_offers_no_retry(page: Page, dashboard: Dashboard) -> None:
    client = dashboard.client()
    requests = _never_failing(5, "fine")
    batch_id = client.messages.batches.create(requests=requests).id  # type: ignore[arg-type]
    assert wait_until_ended(client, batch_id).request_counts.succeeded == 5
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/batches/{batch_id}")
    expect(page.get_by_test_id("status")).to_have_text("ended")
    expect(page.get_by_role("button", name=re.compile("^Delete"))).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Retry"))).to_have_count(0)


def test_an_archived_batch_offers_no_retry(page: Page, dashboard: Dashboard) -> None:
    client = dashboard.client()
    batch_id = dashboard.create(30, "archived")
    assert wait_until_ended(client, batch_id).request_counts.errored
    # Past retention its requests are gone (here, only the mark is set): the API finds none.
    with sqlite3.connect(dashboard.server.database) as db:
        db.execute("UPDATE batches SET archived_at = ? WHERE id = ?", (time.time(), batch_id))
    with pytest.raises(anthropic.NotFoundError, match="archived"):
        client.post(f"/v1/messages/batches/{batch_id}/retry", cast_to=object)
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/batches/{batch_id}")
    expect(page.get_by_text("Results archived")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Retry"))).to_have_count(0)


def test_an_archived_openai_batch_offers_no_retry_nor_its_files(
    page: Page, dashboard: Dashboard
) -> None:
    client = _openai(dashboard)
    batch = _ended_openai_batch(client, "archived")
    # Past retention its results, and so its output and error files, are gone (here the
    # housekeeping archives it, made old).
    with sqlite3.connect(dashboard.server.database) as db:
        db.execute("UPDATE batches SET created_at = 0 WHERE id = ?", (batch.id,))
    deadline = time.monotonic() + 10
    while True:
        with sqlite3.connect(dashboard.server.database) as db:
            [(archived_at,)] = db.execute(
                "SELECT archived_at FROM batches WHERE id = ?", (batch.id,)
            ).fetchall()
        if archived_at is not None:
            break
        assert time.monotonic() < deadline, "housekeeping did not archive the batch"
        time.sleep(0.1)
    with pytest.raises(openai.NotFoundError, match="archived"):
        client.post(f"/batches/{batch.id}/retry", cast_to=object)
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/openai/{batch.id}")
    expect(page.get_by_test_id("archived")).to_contain_text("archived with its results")
    expect(page.get_by_test_id("error-file")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Retry"))).to_have_count(0)
