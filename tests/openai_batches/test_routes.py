"""An OpenAI batch on each kind of route, with the `openai` SDK: an OpenAI-compatible upstream
gets each body as it is; an Anthropic upstream gets it translated to Messages, and its answer
comes back as a chat completion; what a backend cannot do is that request's error line."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion

from backends.conftest import (  # noqa: F401 (the fixtures)
    StartFake,
    llama_server,
    smollm2_path,
    start_fake,
)
from backends.fake_anthropic import FakeAnthropic
from backends.fake_openai import FakeOpenAI
from conftest import KEY, Server
from openai_batches.conftest import jsonl, openai_client, wait_until_done, write_jsonl

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def line(custom_id: str, model: str, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, **body},
    }


def serve(
    start_server: Callable[..., Server],
    tmp_path: Path,
    backend: str,
    url: str,
    routes_before: str = "",
) -> Server:
    """A server whose every model (but those of `routes_before`) goes to the upstream at `url`."""
    config = tmp_path / "routes.toml"
    config.write_text(
        f'{routes_before}[[routes]]\nmodel = "*"\nbackend = "{backend}"\nbase_url = "{url}"\n'
        'api_key_env = "FAKE_UPSTREAM_KEY"\nmax_retries = 0\n'
    )
    return start_server(config=str(config))


def run(server: Server, tmp_path: Path, lines: list[dict[str, Any]]) -> tuple[Any, Any]:
    client = openai_client(server)
    with write_jsonl(tmp_path / "in.jsonl", lines).open("rb") as upload:
        input_file = client.files.create(file=upload, purpose="batch")
    endpoint = lines[0]["url"]
    batch = client.batches.create(
        input_file_id=input_file.id, endpoint=endpoint, completion_window="24h"
    )
    ended = wait_until_done(client, batch.id, timeout=30)
    output = (
        {}
        if ended.output_file_id is None
        else {
            row["custom_id"]: row for row in jsonl(client.files.content(ended.output_file_id).text)
        }
    )
    errors = (
        {}
        if ended.error_file_id is None
        else {
            row["custom_id"]: row for row in jsonl(client.files.content(ended.error_file_id).text)
        }
    )
    return output, errors


def test_an_openai_compatible_upstream_gets_each_body_as_it_is(
    tmp_path: Path,
    start_server: Callable[..., Server],
    start_fake: StartFake,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = start_fake(FakeOpenAI)
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", KEY)
    server = serve(start_server, tmp_path, "openai", f"{fake.base_url}/v1")
    body = {
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "tools": [TOOL],
        "response_format": {"type": "json_object"},
        "logprobs": True,
        "n": 2,
        "max_completion_tokens": 20,
    }
    output, errors = run(server, tmp_path, [line("a", "gpt-4o-mini", **body)])
    assert errors == {} and fake.invalid == []
    assert [arrival.params for arrival in fake.arrivals] == [{"model": "gpt-4o-mini", **body}]
    completion = ChatCompletion.model_validate(output["a"]["response"]["body"])
    assert completion.choices[0].message.content == "echo: hi"


def test_an_anthropic_upstream_gets_the_chat_request_as_messages(
    tmp_path: Path,
    start_server: Callable[..., Server],
    start_fake: StartFake,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = start_fake(FakeAnthropic)
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", KEY)
    server = serve(start_server, tmp_path, "anthropic", fake.base_url)
    model = "claude-haiku-4-5"
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ]},
        {"role": "assistant", "content": None, "tool_calls": [{
            "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]  # fmt: skip
    output, errors = run(
        server,
        tmp_path,
        [
            line("tools", model, messages=chat, tools=[TOOL], tool_choice="auto", stop="END",
                 max_completion_tokens=64, temperature=0.3),
            line("json", model, messages=chat[2:3], response_format={"type": "json_object"}),
        ],
    )  # fmt: skip
    assert fake.invalid == []
    (sent,) = [arrival.params for arrival in fake.arrivals]
    assert isinstance(sent, dict)
    assert sent["system"] == "Be brief.\nAnswer in French."
    assert sent["max_tokens"] == 64 and sent["temperature"] == 0.3
    assert sent["stop_sequences"] == ["END"]
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "The weather in a city",
            "input_schema": TOOL["function"]["parameters"],  # type: ignore[index]
        }
    ]
    assert sent["tool_choice"] == {"type": "auto"}
    assert [message["role"] for message in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][0]["content"][1]["source"] == {
        "type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo=",
    }  # fmt: skip
    assert sent["messages"][1]["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}
    ]
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}
    ]
    completion = ChatCompletion.model_validate(output["tools"]["response"]["body"])
    assert completion.choices[0].message.content == "echo: "  # the fake echoes text only
    assert completion.usage is not None and completion.usage.prompt_tokens == 12
    refused = errors["json"]["response"]
    assert refused["status_code"] == 400
    assert refused["body"]["error"]["message"].startswith("response_format")


def test_plain_chats_reach_an_upstream_as_they_are_beside_a_simulated_route(
    tmp_path: Path,
    start_server: Callable[..., Server],
    start_fake: StartFake,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With a route answered in line, a file of plain chats is decoded a chunk at once; those
    # for an upstream still go there each as it is.
    fake = start_fake(FakeOpenAI)
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", KEY)
    simulated = '[[routes]]\nmodel = "claude-*"\nbackend = "simulator"\n\n'
    server = serve(start_server, tmp_path, "openai", f"{fake.base_url}/v1", simulated)
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "temperature": 1}
    output, errors = run(server, tmp_path, [line(f"r{n}", "gpt-4o-mini", **body) for n in range(3)])
    assert errors == {} and fake.invalid == []
    assert [arrival.params for arrival in fake.arrivals] == [{"model": "gpt-4o-mini", **body}] * 3
    assert sorted(output) == ["r0", "r1", "r2"]


def test_the_simulator_answers_a_plain_chat_alike_beside_lines_of_any_shape(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    # A file of plain chats only is answered from its chunks decoded at once; one line of
    # another shape sends every line of its chunk down the general path.
    server = start_server()
    plain = [
        line("plain", "gpt-4o-mini", messages=[
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"},
        ], max_completion_tokens=30, temperature=0.5),
        line("cut", "gpt-4o-mini", messages=[{"role": "user", "content": "word " * 40}],
             max_tokens=4),
    ]  # fmt: skip
    tools = line("tools", "gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], tools=[TOOL])
    alone, no_errors = run(server, tmp_path, plain)
    mixed, _ = run(server, tmp_path, [*plain, tools])
    assert no_errors == {} and sorted(mixed) == ["cut", "plain", "tools"]

    def answer(row: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = row["response"]["body"]
        ChatCompletion.model_validate(body)
        return {key: value for key, value in body.items() if key != "created"}

    for custom_id in ("plain", "cut"):
        assert answer(alone[custom_id]) == answer(mixed[custom_id])
    # Either way, the batch's usage sums its answers' tokens.
    mixed_batch, alone_batch = openai_client(server).batches.list(limit=2).data
    for batch, output in ((alone_batch, alone), (mixed_batch, mixed)):
        assert batch.usage is not None
        tokens = [row["response"]["body"]["usage"] for row in output.values()]
        assert batch.usage.input_tokens == sum(usage["prompt_tokens"] for usage in tokens)
        assert batch.usage.output_tokens == sum(usage["completion_tokens"] for usage in tokens)
    assert answer(alone["cut"])["choices"][0]["finish_reason"] == "length"
    assert answer(alone["plain"])["choices"][0]["message"]["content"] == "You said: Hello there"


def test_embeddings_need_a_backend_that_embeds(
    tmp_path: Path,
    start_server: Callable[..., Server],
    start_fake: StartFake,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", KEY)
    embed = {
        "custom_id": "e",
        "method": "POST",
        "url": "/v1/embeddings",
        "body": {"model": "text-embedding-3-small", "input": "hello"},
    }
    simulated = start_server()
    _, errors = run(simulated, tmp_path, [embed])
    assert errors["e"]["response"]["status_code"] == 400
    assert "cannot compute embeddings" in errors["e"]["response"]["body"]["error"]["message"]
    simulated.stop()  # the next server takes over its database file

    fake = start_fake(FakeEmbeddings)
    upstream = serve(start_server, tmp_path, "openai", f"{fake.base_url}/v1")
    output, errors = run(upstream, tmp_path, [embed])
    assert errors == {}
    assert [arrival.params for arrival in fake.arrivals] == [embed["body"]]
    answer = CreateEmbeddingResponse.model_validate(output["e"]["response"]["body"])
    assert answer.data[0].embedding == [0.5, -0.25]


@dataclass
class FakeEmbeddings(FakeOpenAI):
    """An OpenAI-compatible upstream's /v1/embeddings."""

    path = "/v1/embeddings"

    def _problem_with(self, params: object, headers: dict[str, str]) -> str | None:
        return None if isinstance(params, dict) and "input" in params else "no input"

    def _answer_to(self, params: dict[str, Any], prompt: str) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],
            "model": params["model"],
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }


@pytest.mark.slow
def test_a_chat_batch_on_llama_cpp_served_smollm2(
    tmp_path: Path,
    start_server: Callable[..., Server],
    llama_server: str,  # noqa: F811
) -> None:
    config = tmp_path / "routes.toml"
    config.write_text(
        f'[[routes]]\nmodel = "smollm2*"\nbackend = "openai"\nbase_url = "{llama_server}"\n'
    )
    server = start_server(config=str(config))
    output, errors = run(
        server,
        tmp_path,
        [
            line("capital", "smollm2", messages=[{"role": "user", "content": "Capital of France?"}],
                 max_tokens=16),
            line("short", "smollm2", messages=[{"role": "user", "content": "Tell me a story."}],
                 max_tokens=4),
        ],
    )  # fmt: skip
    assert errors == {}
    capital = ChatCompletion.model_validate(output["capital"]["response"]["body"])
    assert (capital.choices[0].message.content or "").strip()
    short = ChatCompletion.model_validate(output["short"]["response"]["body"])
    assert short.choices[0].finish_reason == "length"


@pytest.mark.slow
def test_an_embeddings_batch_on_the_local_smollm2_model(
    tmp_path: Path,
    start_server: Callable[..., Server],
    smollm2_path: str,  # noqa: F811
) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (batchgate[local])")
    config = tmp_path / "routes.toml"
    config.write_text(
        f'[[routes]]\nmodel = "smollm2*"\nbackend = "local"\nmodel_path = "{smollm2_path}"\n'
    )
    server = start_server(config=str(config))
    embed = [
        {
            "custom_id": name,
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "smollm2-local", **body},
        }
        for name, body in (
            ("one", {"input": "The cat sat on the mat."}),
            ("two", {"input": ["First text.", "Second text."]}),
            ("sized", {"input": "x", "dimensions": 8}),
        )
    ]
    output, errors = run(server, tmp_path, embed)
    one = CreateEmbeddingResponse.model_validate(output["one"]["response"]["body"])
    two = CreateEmbeddingResponse.model_validate(output["two"]["response"]["body"])
    assert len(one.data) == 1 and len(two.data) == 2
    assert len(one.data[0].embedding) == len(two.data[1].embedding) > 100
    assert errors["sized"]["response"]["body"]["error"]["message"].startswith("dimensions")
