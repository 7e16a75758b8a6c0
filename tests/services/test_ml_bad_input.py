"""Bad input gets a 4xx with a clear JSON message, never a 500; fuzzing agrees."""

from __future__ import annotations

import json

import httpx
import pytest
from schemathesis import GenerationMode

from .conftest import ServerThread
from .fuzzing import fuzz_for_server_errors

LONG = "x" * 100_000


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


CASES = [
    # (id, path, body bytes, content type, status, words the message must contain)
    ("empty text", "/vectors", _json({"text": ""}), "application/json", 422, "at least 1"),
    ("blank text", "/vectors", _json({"text": " \n\t "}), "application/json", 422, "whitespace"),
    ("100k text", "/vectors", _json({"text": LONG}), "application/json", 422, "100000 characters"),
    (
        "100k in batch",
        "/api/v1/ml/embeddings",
        _json({"texts": ["ok", LONG]}),
        "application/json",
        422,
        "texts[1]",
    ),
    (
        "batch over limit",
        "/api/v1/ml/embeddings",
        _json({"texts": ["t"] * 129}),
        "application/json",
        422,
        "limit is 128",
    ),
    (
        "too many pairs",
        "/api/v1/ml/similarity",
        _json({"pairs": [{"a": "x", "b": "y"}] * 65}),
        "application/json",
        422,
        "limit is 64",
    ),
    (
        "empty batch",
        "/api/v1/ml/embeddings",
        _json({"texts": []}),
        "application/json",
        422,
        "texts",
    ),
    (
        "broken JSON",
        "/vectors",
        b'{"text": "unterminated',
        "application/json",
        422,
        "not valid JSON",
    ),
    ("JSON array", "/vectors", _json(["text"]), "application/json", 422, "JSON object"),
    ("wrong type", "/vectors", _json({"text": 5}), "application/json", 422, "body.text"),
    ("no input", "/vectors", _json({"config": {}}), "application/json", 422, "exactly one"),
    (
        "both inputs",
        "/vectors",
        _json({"text": "a", "texts": ["b"]}),
        "application/json",
        422,
        "exactly one",
    ),
    (
        "unknown field",
        "/api/v1/ml/embeddings",
        _json({"texts": ["a"], "x": 1}),
        "application/json",
        422,
        "body.x",
    ),
    (
        "no content type on own API",
        "/api/v1/ml/embeddings",
        _json({"texts": ["a"]}),
        None,
        422,
        "Content-Type: application/json",
    ),
    ("form body", "/vectors", b"text=hello", "application/x-www-form-urlencoded", 422, "JSON"),
    ("non-UTF-8", "/vectors", b'{"text": "\xff\xfe\xfa"}', "application/json", 400, "UTF-8"),
    (
        "cls pooling",
        "/vectors",
        _json({"text": "a", "config": {"pooling_strategy": "cls"}}),
        "application/json",
        422,
        "masked_mean",
    ),
    (
        "wrong dimensions",
        "/vectors",
        _json({"text": "a", "config": {"dimensions": 128}}),
        "application/json",
        422,
        "384",
    ),
    ("huge body", "/vectors", b'{"text": "' + b"a" * (3 * 1024 * 1024) + b'"}', None, 413, "bytes"),
]


@pytest.mark.parametrize(
    ("path", "body", "content_type", "status", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input_gets_a_clear_4xx(
    client: httpx.Client, path: str, body: bytes, content_type: str | None, status: int, words: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/json"
    message = response.json()["error"]
    assert isinstance(message, str) and words in message, message
    assert LONG not in response.text  # the input is never echoed back


def test_wrong_method_and_path_are_json_too(client: httpx.Client) -> None:
    wrong = client.get("/vectors")
    assert wrong.status_code == 405 and wrong.json()["error"] == "Method Not Allowed"
    assert client.get("/nowhere").json()["error"] == "Not Found"


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_server_error(ml_server: ServerThread, mode: GenerationMode) -> None:
    seen = fuzz_for_server_errors(ml_server.url, mode)
    # The fuzzer really reached the inference routes (a run that sends nothing proves nothing).
    paths = {path for _, path, _ in seen}
    assert {"/vectors", "/api/v1/ml/embeddings", "/api/v1/ml/similarity"} & paths, seen
    if mode is GenerationMode.NEGATIVE:
        assert any(kind == 4 for _, _, kind in seen), seen
