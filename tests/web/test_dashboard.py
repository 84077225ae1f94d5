"""The dashboard at /ui in Chromium: sign-in, live progress, errors to results, actions, a
read-only key, another workspace's batch."""

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from conftest import Server, simple_request, wait_until_ended
from events.receiver import Receiver
from web.conftest import Dashboard, Screenshots, post_form, sign_in

# A batch of the dashboard's server ends within seconds.
LIVE_TIMEOUT_MS = 30_000


def test_sign_in_with_a_key_shows_its_workspace(
    page: Page, dashboard: Dashboard, shoot: Screenshots
) -> None:
    page.goto(f"{dashboard.url}/batches")
    expect(page).to_have_url(re.compile(r"/ui/signin"))
    shoot(page, "signin")
    page.get_by_label("API key").fill("bgk_" + "x" * 44)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That key is not valid.")

    page.get_by_label("API key").fill(dashboard.blue)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{dashboard.url}/batches")
    expect(page.get_by_test_id("workspace")).to_contain_text("workspace blue")
    key_cookie = next(c for c in page.context.cookies() if c["name"] == "batchgate_key")
    assert key_cookie["httpOnly"] and key_cookie["sameSite"] == "Strict"
    assert key_cookie["path"] == "/ui"

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/signin"))
    page.goto(f"{dashboard.url}/batches")
    expect(page).to_have_url(re.compile(r"/ui/signin"))


def test_a_new_batch_appears_and_its_bar_reaches_100_percent_without_reloading(
    page: Page, dashboard: Dashboard, shoot: Screenshots
) -> None:
    streams = _event_streams(page)
    sign_in(page, dashboard, dashboard.blue)
    expect(page.locator("[data-events]")).to_have_attribute("data-stream", "open")
    _assert_no_polling(page)
    page.evaluate("window.notReloaded = true")
    batch_id = dashboard.create(80, "live")
    row = page.locator(f"tr[data-batch-id='{batch_id}']")
    expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(row.locator(".pct")).to_have_text("100 %", timeout=LIVE_TIMEOUT_MS)
    expect(row.locator(".status")).to_have_text("ended", timeout=LIVE_TIMEOUT_MS)
    assert page.evaluate("window.notReloaded") is True
    assert streams == [f"{dashboard.url}/events"]
    shoot(page, "batches")

    running = dashboard.create(240, "watched")
    page.goto(f"{dashboard.url}/batches/{running}")
    _assert_no_polling(page)
    page.evaluate("window.notReloaded = true")
    expect(page.get_by_test_id("status")).to_have_text("ended", timeout=LIVE_TIMEOUT_MS)
    expect(page.get_by_test_id("percent")).to_have_text("100 %")
    assert page.evaluate("window.notReloaded") is True
    assert streams[1:] == [f"{dashboard.url}/batches/{running}/events"]
    counts = dashboard.client().messages.batches.retrieve(running).request_counts
    expect(page.get_by_test_id("count-succeeded")).to_have_text(str(counts.succeeded))
    expect(page.get_by_test_id("count-errored")).to_have_text(str(counts.errored))


def _event_streams(page: Page) -> list[str]:
    """The URLs (without their query) of the event streams the page opens, as it opens them."""
    opened: list[str] = []
    page.on(
        "request",
        lambda request: (
            opened.append(request.url.split("?")[0])
            if request.resource_type == "eventsource"
            else None
        ),
    )
    return opened


def _assert_no_polling(page: Page) -> None:
    """The live parts have no timer of their own: they refresh on the stream's events."""
    assert page.locator("[hx-trigger*='every']").count() == 0


def _set_visibility(page: Page, state: str) -> None:
    page.evaluate(
        """state => {
            Object.defineProperty(document, "visibilityState", {value: state, configurable: true});
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        state,
    )


def test_a_hidden_tab_closes_its_stream_and_catches_up_when_shown_again(
    page: Page, dashboard: Dashboard
) -> None:
    sign_in(page, dashboard, dashboard.blue)
    table = page.locator("[data-events]")
    expect(table).to_have_attribute("data-stream", "open")
    _set_visibility(page, "hidden")
    expect(table).to_have_attribute("data-stream", "closed")
    batch_id = dashboard.create(2, "unseen")
    row = page.locator(f"tr[data-batch-id='{batch_id}']")
    page.wait_for_timeout(2_500)
    expect(row).to_have_count(0)

    _set_visibility(page, "visible")
    expect(table).to_have_attribute("data-stream", "open")
    expect(row).to_be_visible()


def _recorded_counts(dashboard: Dashboard, batch_id: str) -> list[dict[str, int]]:
    """The request counts of the batch's progress and ended events, from the API's stream."""
    url = f"{dashboard.server.base_url}/v1/messages/batches/{batch_id}/events"
    with httpx.stream("GET", url, headers={"x-api-key": dashboard.blue}, timeout=30) as answer:
        events = [
            json.loads(line.removeprefix("data: "))
            for line in answer.iter_lines()
            if line.startswith("data: ")
        ]
    return [
        event["data"]["request_counts"]
        for event in events
        if event["type"] in ("batch.progress", "batch.ended")
    ]


def test_an_ended_batch_shows_its_results_over_time(
    page: Page, dashboard: Dashboard, shoot: Screenshots
) -> None:
    batch_id = dashboard.create(240, "charted")
    ended = wait_until_ended(dashboard.client(), batch_id)
    recorded = _recorded_counts(dashboard, batch_id)
    assert len(recorded) >= 3  # progress along the way, then the end
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/batches/{batch_id}")

    chart = page.get_by_test_id("chart")
    summary = chart.locator("figcaption")
    counts = ended.request_counts
    expect(summary).to_contain_text(f"{counts.succeeded + counts.errored} of 240")
    expect(summary).to_contain_text(f"; {len(recorded)} points.")
    expect(chart.get_by_role("img")).to_have_accessible_name(summary.inner_text())
    assert chart.locator("polygon.succeeded").count() == 1
    assert chart.locator("polygon.errored").count() == (1 if counts.errored else 0)
    shoot(page, "batch-chart")


def test_a_batch_page_lists_the_webhook_deliveries_of_its_events(
    page: Page, dashboard: Dashboard, shoot: Screenshots
) -> None:
    answering, failing = Receiver().start(), Receiver(answer=lambda _: 503).start()
    try:
        delivered = dashboard.create(3, "hooked", webhook_url=answering.url)
        pending = dashboard.create(3, "unheard", webhook_url=failing.url)
        answering.wait_for(lambda calls: len(calls) == 2)  # batch.created and batch.ended
        deadline = time.monotonic() + 30
        while len({call.payload["type"] for call in failing.calls}) < 2:
            assert time.monotonic() < deadline, failing.calls
            time.sleep(0.05)
    finally:
        answering.stop()
        failing.stop()
    sign_in(page, dashboard, dashboard.blue)

    page.goto(f"{dashboard.url}/batches/{delivered}")
    expect(page.get_by_test_id("chart")).to_have_count(0)  # it ended at its first count
    rows = page.get_by_test_id("deliveries").locator("tbody tr")
    expect(rows).to_have_count(2)
    for row, event in zip(rows.all(), ("batch.ended", "batch.created"), strict=True):
        cells = row.locator("td")
        # Delivered to the batch's own webhook_url: nothing to redeliver.
        expect(cells).to_have_text([event, answering.url, "delivered", "1", "204", "", ""])

    page.goto(f"{dashboard.url}/batches/{pending}")
    rows = page.get_by_test_id("deliveries").locator("tbody tr")
    expect(rows).to_have_count(2)
    for row in rows.all():
        cells = row.locator("td")
        expect(cells.nth(2)).to_have_text("pending")
        expect(cells.nth(4)).to_have_text("503")
        expect(cells.nth(5)).to_have_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"))
    shoot(page, "batch-deliveries")


def test_a_failed_delivery_to_an_endpoint_is_redelivered_from_the_batch_page(
    page: Page, context: BrowserContext, dashboard: Dashboard
) -> None:
    # Its first call is refused with a 400 (never retried), the next one accepted.
    receiver = Receiver(answer=lambda number: 400 if number == 0 else 204).start()
    hooks = dashboard.client().with_options(max_retries=0)
    webhook: Any = hooks.post(
        "/v1/webhooks",
        body={"url": receiver.url, "event_types": ["batch.ended"]},
        cast_to=object,
    )
    try:
        batch_id = dashboard.create(2, "redelivered")
        deadline = time.monotonic() + 30
        while not receiver.calls:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        sign_in(page, dashboard, dashboard.blue)
        page.goto(f"{dashboard.url}/batches/{batch_id}")
        row = page.get_by_test_id("deliveries").locator("tbody tr")
        expect(row.locator("td").nth(2)).to_have_text("failed", timeout=LIVE_TIMEOUT_MS)
        expect(row.locator("td").nth(4)).to_have_text("400")
        row.get_by_role("button", name="Redeliver").click()
        expect(page).to_have_url(f"{dashboard.url}/batches/{batch_id}")
        receiver.wait_for(lambda delivered: len(delivered) == 1)
        page.reload()
        cells = page.get_by_test_id("deliveries").locator("tbody tr td")
        expect(cells).to_have_text(
            ["batch.ended", receiver.url, "delivered", "2", "204", "", "Redeliver"]
        )
        assert receiver.calls[0].body == receiver.calls[1].body  # the same event, again

        # A read-only key sees the deliveries but no button; a forged post changes nothing.
        page.get_by_role("button", name="Sign out").click()
        sign_in(page, dashboard, dashboard.viewer)
        page.goto(f"{dashboard.url}/batches/{batch_id}")
        expect(page.get_by_test_id("deliveries").locator("tbody tr td")).to_have_count(6)
        deliveries: Any = hooks.get(f"/v1/webhooks/{webhook['id']}/deliveries", cast_to=object)
        [delivery] = deliveries["data"]
        number = delivery["id"].removeprefix("whdlv_")
        action = f"{dashboard.url}/batches/{batch_id}/deliveries/{number}/redeliver"
        assert post_form(context, action) == 403
        time.sleep(1)
        assert len(receiver.calls) == 2
    finally:
        hooks.delete(f"/v1/webhooks/{webhook['id']}", cast_to=object)
        receiver.stop()


def test_filters_and_search_find_batches(page: Page, dashboard: Dashboard) -> None:
    batch_id = dashboard.create(3, "found")
    wait_until_ended(dashboard.client(), batch_id)
    labelled = (
        dashboard.client()
        .messages.batches.create(
            requests=[simple_request("labelled")],  # type: ignore[list-item]
            extra_body={"metadata": {"team": "ui-test"}},
        )
        .id
    )
    sign_in(page, dashboard, dashboard.blue)
    page.get_by_label("Batch id").fill(batch_id)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tr[data-batch-id]")).to_have_count(1)
    expect(page.locator(f"tr[data-batch-id='{batch_id}']")).to_be_visible()
    page.goto(f"{dashboard.url}/batches?status=canceling")
    expect(page.locator(f"tr[data-batch-id='{batch_id}']")).to_have_count(0)
    page.goto(f"{dashboard.url}/batches?status=ended")
    expect(page.locator(f"tr[data-batch-id='{batch_id}']")).to_be_visible()

    page.goto(f"{dashboard.url}/batches")
    page.get_by_role("link", name="team=ui-test").click()
    expect(page).to_have_url(re.compile(r"label=team%3Dui-test"))
    expect(page.locator("tr[data-batch-id]")).to_have_count(1)
    expect(page.locator(f"tr[data-batch-id='{labelled}']")).to_be_visible()


def test_errors_are_grouped_and_an_example_leads_to_its_result(
    page: Page, dashboard: Dashboard, shoot: Screenshots
) -> None:
    batch_id = dashboard.create(30, "faulty")
    ended = wait_until_ended(dashboard.client(), batch_id)
    assert ended.request_counts.errored > 0
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/batches/{batch_id}")
    errors = page.locator("table.errors")
    expect(errors).to_contain_text("invalid_request_error")
    expect(errors.locator("td.num").first).to_have_text(str(ended.request_counts.errored))
    shoot(page, "batch")
    example = errors.get_by_test_id("error-example").first
    custom_id = example.inner_text()
    example.click()
    expect(page).to_have_url(re.compile(r"/results\?custom_id="))
    result = page.locator("article.result")
    expect(result).to_have_count(1)
    expect(result).to_have_attribute("data-custom-id", custom_id)
    expect(result.get_by_test_id("result-type")).to_have_text("errored")
    expect(result).to_contain_text("Simulated invalid_request_error")
    shoot(page, "results")

    page.goto(f"{dashboard.url}/batches/{batch_id}/results?type=succeeded")
    expect(page.get_by_test_id("result-type")).to_have_count(ended.request_counts.succeeded)
    expect(page.get_by_test_id("result-type").first).to_have_text("succeeded")
    download = page.context.request.get(
        f"{dashboard.url}/batches/{batch_id}/results.jsonl?type=errored"
    )
    lines = [json.loads(line) for line in download.text().splitlines()]
    assert len(lines) == ended.request_counts.errored
    assert {line["result"]["type"] for line in lines} == {"errored"}


def test_cancel_a_running_batch_from_its_page(page: Page, dashboard: Dashboard) -> None:
    batch_id = dashboard.create(2000, "long")
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/batches/{batch_id}")
    page.get_by_role("button", name=re.compile(r"^Cancel \(\d+ requests\)")).click()
    expect(page.get_by_test_id("status")).to_have_text(re.compile("canceling|ended"))
    ended = wait_until_ended(dashboard.client(), batch_id)
    assert ended.request_counts.canceled > 0
    expect(page.get_by_test_id("status")).to_have_text("ended", timeout=LIVE_TIMEOUT_MS)
    expect(page.get_by_test_id("count-canceled")).to_have_text(str(ended.request_counts.canceled))


def test_retry_the_failed_requests_of_a_batch_from_its_page(
    page: Page, dashboard: Dashboard
) -> None:
    batch_id = dashboard.create(30, "retried")
    ended = wait_until_ended(dashboard.client(), batch_id)
    failed = ended.request_counts.errored + ended.request_counts.expired
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/batches/{batch_id}")
    page.get_by_role("button", name=f"Retry failed ({failed} requests)").click()
    expect(page).not_to_have_url(f"{dashboard.url}/batches/{batch_id}")
    child_id = page.url.rsplit("/", 1)[-1]
    expect(page.locator(".lineage")).to_contain_text(f"Retry of {batch_id}")
    child = dashboard.client().messages.batches.retrieve(child_id)
    assert (
        child.request_counts.processing
        + child.request_counts.errored
        + (child.request_counts.succeeded)
        == failed
    )
    page.goto(f"{dashboard.url}/batches/{batch_id}")
    expect(page.get_by_test_id("retry-link")).to_have_text(child_id)
    expect(page.get_by_test_id("merged")).to_contain_text("Over the retry chain")
    expect(page.get_by_role("button", name=re.compile("^Retry failed"))).to_have_count(0)


def test_delete_an_ended_batch(page: Page, dashboard: Dashboard) -> None:
    batch_id = dashboard.create(2, "deleted")
    wait_until_ended(dashboard.client(), batch_id)
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/batches/{batch_id}")
    page.get_by_role("button", name="Delete (2 results)").click()
    expect(page).to_have_url(f"{dashboard.url}/batches")
    expect(page.locator(f"tr[data-batch-id='{batch_id}']")).to_have_count(0)
    page.goto(f"{dashboard.url}/batches/{batch_id}")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()


def test_a_read_only_key_sees_no_actions_and_is_refused_if_it_posts_one(
    page: Page, context: BrowserContext, dashboard: Dashboard, shoot: Screenshots
) -> None:
    batch_id = dashboard.create(2000, "watched-only")
    sign_in(page, dashboard, dashboard.viewer)
    expect(page.get_by_test_id("workspace")).to_contain_text("read-only")
    page.goto(f"{dashboard.url}/batches/{batch_id}")
    expect(page.get_by_test_id("status")).to_be_visible()
    expect(page.locator(".actions")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^(Cancel|Retry|Delete)"))).to_have_count(0)
    shoot(page, "read-only")
    for action in ("cancel", "retry", "delete"):
        assert post_form(context, f"{dashboard.url}/batches/{batch_id}/{action}") == 403
    assert dashboard.client().messages.batches.retrieve(batch_id).cancel_initiated_at is None
    dashboard.client().messages.batches.cancel(batch_id)


def test_an_action_without_the_csrf_token_is_refused(
    page: Page, context: BrowserContext, dashboard: Dashboard
) -> None:
    batch_id = dashboard.create(2000, "forged")
    sign_in(page, dashboard, dashboard.blue)
    assert post_form(context, f"{dashboard.url}/batches/{batch_id}/cancel", csrf=False) == 403
    forged = httpx.post(
        f"{dashboard.url}/batches/{batch_id}/cancel",
        data={"csrf": "guessed"},
        cookies={
            "batchgate_key": dashboard.blue,
            "batchgate_csrf": next(
                c["value"] for c in context.cookies() if c["name"] == "batchgate_csrf"
            ),
        },
    )
    assert forged.status_code == 403
    assert dashboard.client().messages.batches.retrieve(batch_id).cancel_initiated_at is None
    dashboard.client().messages.batches.cancel(batch_id)


def test_another_workspaces_batch_is_a_404_page(
    page: Page, dashboard: Dashboard, shoot: Screenshots
) -> None:
    batch_id = dashboard.create(1, "private")
    sign_in(page, dashboard, dashboard.red)
    response = page.goto(f"{dashboard.url}/batches/{batch_id}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator(f"tr[data-batch-id='{batch_id}']")).to_have_count(0)
    shoot(page, "not-found")
    page.goto(f"{dashboard.url}/batches")
    expect(page.locator(f"tr[data-batch-id='{batch_id}']")).to_have_count(0)


def _sse_data(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.startswith("data: "):
            yield json.loads(line.removeprefix("data: "))


def test_the_dashboards_streams_are_the_signed_in_workspaces_only(
    page: Page, dashboard: Dashboard
) -> None:
    blue = dashboard.create(1, "blues")
    red = dashboard.client(dashboard.red).messages.batches.create(
        requests=[simple_request("reds")]  # type: ignore[list-item]
    )
    wait_until_ended(dashboard.client(), blue)
    wait_until_ended(dashboard.client(dashboard.red), red.id)
    sign_in(page, dashboard, dashboard.red)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}

    # An ended batch's stream from the start: its events, then the end of the response.
    answer = httpx.get(f"{dashboard.url}/batches/{red.id}/events?after=0", cookies=cookies)
    assert answer.headers["content-type"].startswith("text/event-stream")
    types = [event["type"] for event in _sse_data(iter(answer.text.splitlines()))]
    assert types[0] == "batch.created" and types[-1] == "batch.ended"
    url = f"{dashboard.url}/events?after=0"
    with httpx.stream("GET", url, cookies=cookies, timeout=30) as stream:
        for event in _sse_data(stream.iter_lines()):
            assert event["data"]["id"] != blue
            if event["data"]["id"] == red.id and event["type"] == "batch.ended":
                break
    assert httpx.get(f"{dashboard.url}/batches/{blue}/events", cookies=cookies).status_code == 404
    signed_out = httpx.get(f"{dashboard.url}/events")
    assert signed_out.status_code == 303 and "/ui/signin" in signed_out.headers["location"]


def test_without_keys_the_dashboard_opens_without_signing_in(
    page: Page, start_server: Callable[..., Server]
) -> None:
    server = start_server()
    page.goto(f"{server.base_url}/ui/batches")
    expect(page).to_have_url(f"{server.base_url}/ui/batches")
    expect(page.get_by_role("heading", name="Batches")).to_be_visible()


def test_the_backends_page_shows_each_routes_numbers(
    page: Page, dashboard: Dashboard, shoot: Screenshots
) -> None:
    wait_until_ended(dashboard.client(), dashboard.create(10, "routed"))
    sign_in(page, dashboard, dashboard.blue)
    page.get_by_role("link", name="Backends").click()
    route = page.locator("tr[data-route]").first
    expect(route).to_contain_text("succeeded")
    expect(route).to_contain_text("errored")
    shoot(page, "backends")


def test_submit_checks_each_line_then_creates_the_batch(
    page: Page, dashboard: Dashboard, shoot: Screenshots
) -> None:
    sign_in(page, dashboard, dashboard.blue)
    page.get_by_role("link", name="Submit").click()
    bad = (
        b'{"custom_id": "a", "params": {"model": "m", "max_tokens": 5, "messages": []}}\nnot json\n'
    )
    page.get_by_label("File").set_input_files(
        files=[{"name": "requests.jsonl", "mimeType": "application/jsonl", "buffer": bad}]
    )
    page.get_by_role("button", name="Check and create").click()
    rejected = page.get_by_test_id("rejected")
    expect(rejected).to_contain_text("line 1: params.messages must be a non-empty array")
    expect(rejected).to_contain_text("line 2: not valid JSON")
    shoot(page, "submit")

    page.get_by_label("a prompt, for the model below").check()
    page.get_by_label("or the lines themselves").fill("What is AI?\nWhat is ML?\n")
    page.get_by_role("button", name="Check and create").click()
    expect(page).to_have_url(re.compile(r"/ui/batches/msgbatch_"))
    batch_id = page.url.rsplit("/", 1)[-1]
    expect(page.get_by_test_id("status")).to_have_text("ended", timeout=LIVE_TIMEOUT_MS)
    results = dashboard.client().messages.batches.results(batch_id)
    assert sorted(result.custom_id for result in results) == ["line-1", "line-2"]


def test_a_read_only_key_cannot_submit(
    page: Page, context: BrowserContext, dashboard: Dashboard
) -> None:
    sign_in(page, dashboard, dashboard.viewer)
    expect(page.get_by_role("link", name="Submit")).to_have_count(0)
    assert post_form(context, f"{dashboard.url}/submit") == 403


def _labelled(dashboard: Dashboard, count: int, label: dict[str, str], key: str = "") -> str:
    requests = [simple_request(f"bulk-{i}") for i in range(count)]
    created = dashboard.client(key or None).messages.batches.create(
        requests=requests,  # type: ignore[arg-type]
        extra_body={"metadata": label},
    )
    return created.id


def test_bulk_cancel_on_a_filter_previews_then_touches_only_what_it_showed(
    page: Page, dashboard: Dashboard, shoot: Screenshots
) -> None:
    label = {"sweep": "bulk-cancel"}
    running = [_labelled(dashboard, 2000, label) for _ in range(3)]
    finished = _labelled(dashboard, 1, label)
    wait_until_ended(dashboard.client(), finished)
    other_workspace = _labelled(dashboard, 2000, label, dashboard.red)
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/batches?label=sweep%3Dbulk-cancel")
    page.get_by_role("link", name="cancel those in progress…").click()
    expect(page.get_by_test_id("bulk-count")).to_contain_text("3 batches would be canceled")
    for batch_id in running:
        expect(page.get_by_role("link", name=batch_id)).to_be_visible()
    shoot(page, "bulk-preview")
    late = _labelled(dashboard, 2000, label)  # created after the preview: left alone

    page.get_by_role("button", name="Cancel 3 batches").click()
    expect(page.get_by_test_id("bulk-outcome")).to_contain_text("Canceling 3 batches.")
    client = dashboard.client()
    for batch_id in running:
        assert client.messages.batches.retrieve(batch_id).cancel_initiated_at is not None
    assert client.messages.batches.retrieve(late).cancel_initiated_at is None
    red = dashboard.client(dashboard.red).messages.batches.retrieve(other_workspace)
    assert red.cancel_initiated_at is None
    client.messages.batches.cancel(late)
    dashboard.client(dashboard.red).messages.batches.cancel(other_workspace)


def test_bulk_delete_removes_the_ended_batches_of_a_filter_and_a_viewer_cannot(
    page: Page, context: BrowserContext, dashboard: Dashboard
) -> None:
    label = {"sweep": "bulk-delete"}
    ended = [_labelled(dashboard, 2, label) for _ in range(2)]
    for batch_id in ended:
        wait_until_ended(dashboard.client(), batch_id)
    running = _labelled(dashboard, 2000, label)

    sign_in(page, dashboard, dashboard.viewer)
    page.goto(f"{dashboard.url}/batches/bulk?action=delete&label=sweep%3Dbulk-delete")
    expect(page.get_by_test_id("bulk-count")).to_contain_text("2 batches would be deleted")
    expect(page.get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)
    token = next(c["value"] for c in context.cookies() if c["name"] == "batchgate_csrf")
    refused = context.request.post(
        f"{dashboard.url}/batches/bulk?label=sweep%3Dbulk-delete",
        form={"csrf": token, "action": "delete", "through_id": ended[-1]},
        max_redirects=0,
    )
    assert refused.status == 403
    assert dashboard.client().messages.batches.retrieve(ended[0]).processing_status == "ended"

    context.clear_cookies()
    sign_in(page, dashboard, dashboard.blue)
    page.goto(f"{dashboard.url}/batches?label=sweep%3Dbulk-delete&status=ended")
    page.get_by_role("link", name="delete those ended…").click()
    page.get_by_role("button", name="Delete 2 batches").click()
    expect(page.get_by_test_id("bulk-outcome")).to_contain_text("Deleted 2 batches.")
    for batch_id in ended:
        page.goto(f"{dashboard.url}/batches/{batch_id}")
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert dashboard.client().messages.batches.retrieve(running).processing_status != "ended"
    dashboard.client().messages.batches.cancel(running)


def test_a_custom_id_search_finds_every_batch_holding_it_and_leads_to_its_result(
    page: Page, dashboard: Dashboard
) -> None:
    client = dashboard.client()
    holding = []
    for _ in range(2):
        requests = [simple_request("needle-7f3"), simple_request("hay")]
        holding.append(client.messages.batches.create(requests=requests).id)  # type: ignore[arg-type]
    elsewhere = dashboard.create(2, "hay")
    for batch_id in (*holding, elsewhere):
        wait_until_ended(client, batch_id)
    sign_in(page, dashboard, dashboard.blue)
    page.get_by_label("Batch id or custom_id").fill("needle-7f3")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tr[data-batch-id]")).to_have_count(2)
    for batch_id in holding:
        expect(page.locator(f"tr[data-batch-id='{batch_id}']")).to_be_visible()
    page.locator(f"tr[data-batch-id='{holding[0]}']").get_by_role(
        "link", name="its result for needle-7f3"
    ).click()
    expect(page.locator("article.result")).to_have_count(1)
    expect(page.locator("article.result[data-custom-id='needle-7f3']")).to_be_visible()
