"""Reading request bodies with long strings (data URLs) replaced by tokens."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import msgspec
import pytest

from nemorouter.testing import sim_request
from nemorouter.testing.sim_answers import build_answer, count_inputs, messages_digest
from nemorouter.testing.sim_request import LONG_STRING, LongStrings, long_string, read_chat


def data_url(n_bytes: int, seed: int = 7) -> str:
    raw = random.Random(seed).randbytes(n_bytes)
    return "data:image/jpeg;base64," + base64.b64encode(raw).decode()


def image_request(url: str, text: str = "Extract the total.") -> dict[str, Any]:
    content = [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
    ]
    return {"model": "m", "messages": [{"role": "user", "content": content}], "max_tokens": 9}


def read(body: bytes, cache: LongStrings | None = None) -> tuple[Any, dict[str, int]]:
    return read_chat(body, cache if cache is not None else LongStrings())


def test_small_body_is_decoded_as_is() -> None:
    body = json.dumps(image_request(data_url(300))).encode()
    assert len(body) < LONG_STRING
    assert read(body) == (json.loads(body), {})


def test_data_url_is_replaced_by_its_token() -> None:
    url = data_url(225_000)
    req, chars = read(msgspec.json.encode(image_request(url)))
    token = long_string(url.encode(), len(url)).token
    assert req["messages"][0]["content"][1]["image_url"] == {"url": token, "detail": "high"}
    assert req["messages"][0]["content"][0]["text"] == "Extract the total."
    assert req["max_tokens"] == 9
    assert chars == {token: len(url)}
    assert token.startswith("\x00sim-long:") and len(token) < 40


def test_token_ignores_layout_key_order_and_escaping() -> None:
    url = data_url(40_000)
    req = image_request(url)
    compact = msgspec.json.encode(req)
    pretty = json.dumps(req, indent=2).encode()
    reordered = json.dumps(
        {"max_tokens": 9, "messages": [{"content": req["messages"][0]["content"], "role": "user"}]}
        | {"model": "m"}
    ).encode()
    slashes = compact.replace(b"/", b"\\/")  # some encoders escape '/'
    decoded = [read(b)[0] for b in (compact, pretty, reordered, slashes)]
    digests = {messages_digest(d["messages"]) for d in decoded}
    assert len(digests) == 1
    # and equal to what decoding the whole body and then replacing gives (the fallback path)
    many = dict(req, padding=["x"] * 5000)  # too many string literals for the hop scanner
    slow = read(msgspec.json.encode(many))[0]
    assert messages_digest(slow["messages"]) in digests


def test_one_changed_byte_changes_the_digest() -> None:
    url = data_url(225_000)
    cache = LongStrings()
    first = read(msgspec.json.encode(image_request(url)), cache)[0]
    # same length, same sampled bytes: only the full comparison sees the difference
    step = len(url) // sim_request._SAMPLES + 1
    middle = step * (sim_request._SAMPLES // 2) + 1
    other = url[:middle] + ("A" if url[middle] != "A" else "B") + url[middle + 1 :]
    second = read(msgspec.json.encode(image_request(other)), cache)[0]
    assert len(cache) == 1  # one cache key for both: the new string took the slot
    again = read(msgspec.json.encode(image_request(url)), cache)[0]
    assert messages_digest(first["messages"]) != messages_digest(second["messages"])
    assert messages_digest(first["messages"]) == messages_digest(again["messages"])


def test_long_text_counts_characters_exactly() -> None:
    text = 'Zeile mit Umlauten: äöü "quoted" \\ back\n' * 1000  # escapes and non-ASCII
    plain = "Grüße " * 4000  # non-ASCII without escapes when sent as UTF-8
    req = image_request(data_url(30_000), text)
    req["messages"].insert(0, {"role": "system", "content": plain})
    del req["max_tokens"]
    expected = len(text) + len(plain)
    digests = set()
    for body in (
        json.dumps(req).encode(),  # \u00e4 escapes
        json.dumps(req, ensure_ascii=False).encode(),  # raw UTF-8
        msgspec.json.encode(dict(req, padding=["x"] * 5000)),  # fallback path
    ):
        decoded, chars = read(body)
        assert count_inputs(decoded["messages"], chars) == (1, expected)
        answer = build_answer(decoded, chars)
        assert answer.prompt_tokens == -(-expected // 4) + 258
        assert f"1 image(s), {expected} text chars." in answer.content
        digests.add(messages_digest(decoded["messages"]))
    assert len(digests) == 1


def test_long_literal_that_unescapes_short_is_kept() -> None:
    text = "é" * (LONG_STRING // 3)  # 2 UTF-8 bytes each, 6 bytes as \u00e9
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": text}]}).encode()
    assert len(text.encode()) < LONG_STRING < len(body)
    decoded, chars = read(body)
    assert decoded["messages"][0]["content"] == text
    assert chars == {}


def test_escaped_quotes_inside_a_long_string() -> None:
    tricky = 'say \\"hi\\" \\\\' * 3000 + "\\"  # ends in a backslash before the closing quote
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": tricky}]}).encode()
    decoded, chars = read(body)
    token = decoded["messages"][0]["content"]
    assert chars == {token: len(tricky)}
    assert token == long_string(tricky.encode(), len(tricky)).token


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "m", "messages": [{"content": "' + b"A" * LONG_STRING,  # unterminated
        b'{"model": "m", "messages": [{"content": "' + b"\xff" * LONG_STRING + b'"}]}',
        b'{"model": "m", "messages": [{"content": "' + b"A" * LONG_STRING + b'"}]',  # no }
    ],
)
def test_invalid_bodies_raise(body: bytes) -> None:
    with pytest.raises((msgspec.DecodeError, ValueError)):
        read(body)


def test_cache_recognises_repeats_and_stays_bounded() -> None:
    cache = LongStrings(max_entries=3, max_bytes=1 << 20)
    urls = [data_url(20_000, seed) for seed in range(5)]
    bodies = [msgspec.json.encode(image_request(u)) for u in urls]
    tokens = [read(b, cache)[0]["messages"][0]["content"][1]["image_url"]["url"] for b in bodies]
    assert len(set(tokens)) == 5
    assert len(cache) == 3
    assert read(bodies[4], cache)[0]["messages"][0]["content"][1]["image_url"]["url"] == tokens[4]
    assert read(bodies[0], cache)[0]["messages"][0]["content"][1]["image_url"]["url"] == tokens[0]
    big = data_url(400_000)  # over a quarter of max_bytes: answered, not kept
    read(msgspec.json.encode(image_request(big)), cache)
    assert len(cache) == 3
    cache.clear()
    assert len(cache) == 0
