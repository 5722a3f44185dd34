"""Parsing the chat-completions body once at the edge."""

from __future__ import annotations

import json

import pytest

from nemorouter.types.errors import GatewayError
from nemorouter.types.image_tokens import ANY
from nemorouter.types.request import MAX_JSON_DEPTH, parse_chat_request


def raw(body: object) -> bytes:
    return json.dumps(body).encode()


def test_parses_and_strips_gateway_fields() -> None:
    body = {
        "model": "gemini-2.5-pro",
        "messages": [{"role": "user", "content": "hi"}],
        "tags": ["vision"],
        "metadata": {"job_id": "j1"},
        "nemo_cache": False,
        "temperature": 0,
    }
    request = parse_chat_request(raw(body))
    assert request.model == "gemini-2.5-pro"
    assert request.stream is False
    assert request.images == 0
    assert request.text_chars == 2
    assert request.body == {
        "model": "gemini-2.5-pro",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0,
    }
    options = request.options
    assert options.tags == {"vision"}
    assert options.metadata == {"job_id": "j1"}
    assert options.job_id == "j1"
    assert (options.cache_read, options.cache_write) == (False, False)


def test_detects_image_parts_and_stream() -> None:
    content = [
        {"type": "text", "text": "read this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    request = parse_chat_request(
        raw({"model": "m", "stream": True, "messages": [{"role": "user", "content": content}]})
    )
    assert request.stream is True
    assert request.images == 1
    assert request.text_chars == len("read this")
    assert request.prompt_tokens_estimate == 3 + 1500  # typical: for window checks
    # Reserved: 9 characters at 3 a token, one message's and the reply's overhead, and an
    # image whose size cannot be read ("AAAA"), at the most any rule counts for a page scan.
    assert request.prompt_tokens_for(ANY) == 3 + 4 + 3 + 5160


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (raw({"messages": [{"role": "user", "content": "x"}]}), "'model'"),
        (raw({"model": "", "messages": [{"role": "user", "content": "x"}]}), "'model'"),
        (raw({"model": "m"}), "'messages'"),
        (raw({"model": "m", "messages": []}), "'messages'"),
        (raw({"model": "m", "messages": ["hi"]}), "messages[0]"),
        (raw({"model": "m", "messages": [{"role": "robot", "content": "x"}]}), "messages[0].role"),
        (raw({"model": "m", "messages": [{"role": "user", "content": 5}]}), "messages[0].content"),
        (raw({"model": "m", "messages": [{"role": "user", "content": [{"text": "x"}]}]}), "'type'"),
        (
            raw(
                {
                    "model": "m",
                    "messages": [
                        {"role": "user", "content": [{"type": "image_url", "image_url": {}}]}
                    ],
                }
            ),
            "image_url.url",
        ),
        (
            raw({"model": "m", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}),
            "'stream'",
        ),
    ],
)
def test_invalid_bodies_are_400(payload: bytes, fragment: str) -> None:
    with pytest.raises(GatewayError) as info:
        parse_chat_request(payload)
    assert info.value.status == 400
    assert info.value.code == "invalid_request"
    assert fragment in info.value.message
    body = info.value.body()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    assert body["type"] == "invalid_request_error"


def _nested(levels: int) -> bytes:
    """A body whose deepest container sits at `levels` (the body itself is level 1)."""
    inner = "[" * (levels - 1) + "]" * (levels - 1)
    return b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "x": %s}' % (
        inner.encode()
    )


def test_nesting_is_bounded() -> None:
    parse_chat_request(_nested(MAX_JSON_DEPTH))
    for levels in (MAX_JSON_DEPTH + 1, 255, 1023):
        with pytest.raises(GatewayError) as refused:
            parse_chat_request(_nested(levels))
        assert refused.value.status == 400 and refused.value.param == "x"


@pytest.mark.parametrize(
    ("field", "value"),
    [("n", "18446744073709551616"), ("seed", "-9223372036854775808"), ("temperature", "1e300"),
     ("max_tokens", "2147483648"), ("max_completion_tokens", "-1"), ("tools", '[{"a": 1e19}]')],
)  # fmt: skip
def test_numbers_out_of_range_are_refused_naming_the_field(field: str, value: str) -> None:
    raw = '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "%s": %s}'
    with pytest.raises(GatewayError) as refused:
        parse_chat_request((raw % (field, value)).encode())
    assert refused.value.status == 400 and refused.value.param == field


def test_numbers_within_range_pass() -> None:
    raw = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": %d, "max_tokens": %d}'
    parse_chat_request(raw % (2**63 - 1, 2**31 - 1))


@pytest.mark.parametrize("model", ["gemini\u0000", "m" * 201])
def test_model_names_that_do_not_fit_the_record_are_refused(model: str) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(GatewayError) as refused:
        parse_chat_request(json.dumps(body).encode())
    assert refused.value.param == "model"
