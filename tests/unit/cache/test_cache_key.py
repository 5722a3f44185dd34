"""The cache key: same bytes hit however they are wrapped; any answer-changing input misses."""

from __future__ import annotations

import base64
import copy
import hashlib

import orjson
import pytest

from nemorouter.core import cache_key as cache_key_module
from nemorouter.core.cache_key import cache_key, cache_scope
from nemorouter.types.request import parse_chat_request
from tests.unit.cache.images import data_url, image_body, page_png

TARGET, SCOPE = "document-vision", "team:t1"
PNG = page_png()


def key(body: dict, target: str = TARGET, scope: str = SCOPE) -> str:
    return cache_key(body, target, scope)


@pytest.mark.parametrize(
    "url",
    [
        data_url(PNG, "data:image/png;name=x.png;base64,"),
        data_url(PNG, wrap=True),  # base64 with line breaks every 76 characters
        data_url(PNG, "data:image/png;name=x.png;base64,", wrap=True),
        data_url(PNG, "data:IMAGE/PNG;base64,"),
        "data:image/png;base64," + base64.urlsafe_b64encode(PNG).decode(),  # URL-safe alphabet
        data_url(PNG).rstrip("="),  # padding dropped
        data_url(PNG).replace(",", ",\r\n", 1),
    ],
)
def test_same_image_differently_wrapped_hits(url: str) -> None:
    assert key(image_body(url)) == key(image_body(data_url(PNG)))


def test_mime_parameter_order_does_not_matter() -> None:
    a = data_url(PNG, "data:image/png;name=x.png;quality=90;base64,")
    b = data_url(PNG, "data:image/png;quality=90;name=x.png;base64,")
    assert key(image_body(a)) == key(image_body(b))


def test_one_changed_pixel_misses() -> None:
    changed = page_png(flip=(123, 45))
    assert changed != PNG
    assert key(image_body(data_url(changed))) != key(image_body(data_url(PNG)))


def test_mime_type_counts() -> None:
    assert key(image_body(data_url(PNG, "data:image/jpeg;base64,"))) != key(
        image_body(data_url(PNG))
    )


def test_http_urls_are_keyed_by_url() -> None:
    a = image_body("https://example.com/a.png")
    assert key(a) == key(image_body("https://example.com/a.png"))
    assert key(a) != key(image_body("https://example.com/b.png"))


def test_images_are_replaced_by_the_sha256_of_their_decoded_bytes() -> None:
    digest = cache_key_module._data_url_digest(data_url(PNG, "data:image/png;a=b;base64,", True))
    assert digest == {"mime": "image/png", "sha256": hashlib.sha256(PNG).hexdigest()}


def test_invalid_base64_still_gets_a_key() -> None:
    a = image_body("data:image/png;base64,@@@not base64@@@")
    b = image_body("data:image/png;base64,@@@not base64!@@")
    assert key(a) != key(b)
    assert key(a) == key(copy.deepcopy(a))


def test_bare_string_image_url_and_detail() -> None:
    body = image_body(data_url(PNG))
    bare = copy.deepcopy(body)
    bare["messages"][0]["content"][1]["image_url"] = data_url(PNG, wrap=True)
    assert key(bare) == key(copy.deepcopy(bare))
    low = copy.deepcopy(body)
    low["messages"][0]["content"][1]["image_url"]["detail"] = "low"
    assert key(low) != key(body)  # detail changes what the model sees


def test_file_and_audio_parts_are_hashed_by_bytes() -> None:
    def with_file(data: str) -> dict:
        part = {"type": "file", "file": {"file_data": data, "filename": "a.pdf"}}
        return {"model": "m", "messages": [{"role": "user", "content": [part]}]}

    raw = b"%PDF-1.4 " + bytes(range(256)) * 40
    plain = base64.b64encode(raw).decode()
    assert key(with_file(plain)) == key(with_file(base64.encodebytes(raw).decode()))
    assert key(with_file("data:application/pdf;base64," + plain)) != key(with_file(plain))
    assert key(with_file(plain)) != key(with_file(base64.b64encode(raw + b"x").decode()))

    def with_audio(data: str) -> dict:
        part = {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}
        return {"model": "m", "messages": [{"role": "user", "content": [part]}]}

    assert key(with_audio(plain)) == key(with_audio(base64.encodebytes(raw).decode()))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("temperature", 0.2),
        ("top_p", 0.9),
        ("max_tokens", 100),
        ("max_completion_tokens", 100),
        ("seed", 42),
        ("stop", ["\n\n"]),
        ("n", 2),
        ("response_format", {"type": "json_object"}),
        ("tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}]),
        ("tool_choice", "required"),
        ("presence_penalty", 0.5),
        ("logprobs", True),
        ("reasoning_effort", "low"),
        ("some_future_parameter", 1),  # unknown fields count: they reach the provider
    ],
)
def test_parameters_that_change_the_answer_miss(name: str, value: object) -> None:
    body = image_body(data_url(PNG))
    assert key({**body, name: value}) != key(body)


def test_text_changes_miss() -> None:
    assert key(image_body(data_url(PNG), "Classify.")) != key(image_body(data_url(PNG)))


def test_target_and_scope_are_in_the_key() -> None:
    body = image_body(data_url(PNG))
    assert key(body, target="gemini-2.5-flash") != key(body)
    assert key(body, scope="team:t2") != key(body)
    assert key(body, scope="global") != key(body)


@pytest.mark.parametrize(
    "extra",
    [
        {"stream": True},
        {"stream": True, "stream_options": {"include_usage": True}},
        {"user": "alice"},
        {"model": "another-name-for-the-same-target"},
        {"seed": None},  # null = not given
        {"metadata": {"job_id": "j1"}, "tags": ["vision"], "nemo_cache": True},
    ],
)
def test_fields_that_do_not_change_the_answer(extra: dict) -> None:
    body = image_body(data_url(PNG), temperature=0)
    assert key({**body, **extra}) == key(body)


def test_integer_valued_floats_equal_integers() -> None:
    body = image_body(data_url(PNG))
    assert key({**body, "temperature": 0}) == key({**body, "temperature": 0.0})
    assert key({**body, "temperature": 1}) != key({**body, "temperature": 0})


def test_key_order_does_not_matter() -> None:
    body = image_body(data_url(PNG), temperature=0, seed=1)
    reordered = dict(reversed(list(body.items())))
    reordered["messages"] = [dict(reversed(list(m.items()))) for m in body["messages"]]
    assert key(reordered) == key(body)


def test_gateway_fields_job_and_request_ids_do_not_change_the_key() -> None:
    def parsed(**extra: object) -> dict:
        raw = orjson.dumps({**image_body(data_url(PNG)), **extra})
        return parse_chat_request(raw).body

    plain = key(parsed())
    assert key(parsed(metadata={"job_id": "job-1", "request_id": "r-1"})) == plain
    assert key(parsed(metadata={"job_id": "job-2"}, tags=["job:job-2", "vision"])) == plain
    assert key(parsed(cache={"no-store": True}, fallbacks=["x"], disable_fallbacks=True)) == plain


def test_the_body_is_not_modified() -> None:
    body = image_body(data_url(PNG, wrap=True), temperature=0.0)
    before = copy.deepcopy(body)
    key(body)
    assert body == before


def test_scopes() -> None:
    assert cache_scope("team", "k1", "t1") == "team:t1"
    assert cache_scope("team", "k1", None) == "key:k1"  # a teamless key is its own team
    assert cache_scope("key", "k1", "t1") == "key:k1"
    assert cache_scope("global", "k1", "t1") == "global"
    with pytest.raises(ValueError, match="scope"):
        cache_scope("org", "k1", None)
