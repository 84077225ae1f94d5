"""Which lines of an OpenAI batch's results go to its output file, read from their bytes."""

import orjson
import pytest

from batchgate.lifecycle import openai_results


@pytest.mark.parametrize(
    ("line", "output"),
    [
        (openai_results.succeeded("review-1", b'{"object":"chat.completion"}'), True),
        (openai_results.errored("review-1", "invalid_request_error", "Bad."), False),
        (openai_results.errored("review-1", "overloaded_error", "Busy."), False),
        (openai_results.canceled("review-1"), False),
        (openai_results.expired("review-1"), False),
        # A custom_id spelling out a status cannot pass for the line's own.
        (
            openai_results.errored('x"response":{"status_code":200,', "api_error", "Failed."),
            False,
        ),
        (openai_results.succeeded('x"response":{"status_code":500,', b"{}"), True),
        # A line of another key order is decoded.
        (b'{"response":{"body":{},"status_code":201},"custom_id":"a"}', True),
    ],
)
def test_a_line_is_output_when_its_response_is_2xx(line: bytes, output: bool) -> None:
    assert openai_results.is_output(line) is output


def test_the_bytes_of_a_part_are_shared_between_the_output_and_error_files() -> None:
    output = [openai_results.succeeded(f"ok-{n}", orjson.dumps({"n": n})) + b"\n" for n in range(3)]
    errors = [
        openai_results.errored("bad", "invalid_request_error", "Bad.") + b"\n",
        openai_results.canceled("late") + b"\n",
    ]
    part = output[0] + errors[0] + output[1] + errors[1] + output[2]
    assert openai_results.output_and_error_bytes(part) == (
        sum(map(len, output)),
        sum(map(len, errors)),
    )


def test_a_succeeded_line_is_its_dict_as_json() -> None:
    body = {"object": "chat.completion", "choices": [{"message": {"content": 'Say "hi"\n'}}]}
    line = openai_results.succeeded('a "quoted" id', orjson.dumps(body))
    decoded = orjson.loads(line)
    number = decoded["id"].removeprefix("batch_req_")
    assert line == orjson.dumps(
        {
            "id": f"batch_req_{number}",
            "custom_id": 'a "quoted" id',
            "response": {"status_code": 200, "request_id": f"req_{number}", "body": body},
            "error": None,
        }
    )
