"""A provider's 200 is checked before it is taken as an answer: error objects, wrong shapes and
impossible usage are `malformed` failures (retried like a 5xx), in every wire format."""

from __future__ import annotations

from typing import Any

import pytest

from nemorouter.core.retry import RetryPolicy
from nemorouter.providers import anthropic_response, gemini_response
from nemorouter.providers.answer_check import (
    MAX_TOKENS,
    check_chunk,
    check_completion,
    translated,
)
from nemorouter.types.upstream import FailureKind, UpstreamFailure

MESSAGE = {"role": "assistant", "content": "ok"}
GOOD = {"choices": [{"index": 0, "message": MESSAGE}], "usage": {"prompt_tokens": 3}}


def malformed(call: Any) -> UpstreamFailure:
    with pytest.raises(UpstreamFailure) as caught:
        call()
    assert caught.value.kind is FailureKind.MALFORMED and caught.value.retryable
    return caught.value


@pytest.mark.parametrize(
    "data",
    [
        {"error": {"message": "quota exceeded"}},
        {"choices": {"index": 0, "message": MESSAGE}},
        {"choices": "oops"},
        {"choices": []},
        {"choices": [{"index": 0}]},
        {"choices": [1]},
        {**GOOD, "usage": {"prompt_tokens": -1}},
        {**GOOD, "usage": {"prompt_tokens": 10**13}},
        {**GOOD, "usage": {"completion_tokens": 2.5}},
        {**GOOD, "usage": {"total_tokens": True}},
        {**GOOD, "usage": {"prompt_tokens_details": {"cached_tokens": "7"}}},
        {**GOOD, "usage": [1, 2]},
    ],
)
def test_openai_completions_that_are_no_answer(data: dict[str, Any]) -> None:
    failure = malformed(lambda: check_completion(data, "provider"))
    assert failure.status == 200


def test_openai_answers_and_chunks_that_pass() -> None:
    assert check_completion({**GOOD, "error": None, "usage": None}, "p")["choices"]
    check_completion({**GOOD, "usage": {"prompt_tokens": MAX_TOKENS, "completion_tokens": 0}}, "p")
    check_chunk({"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}, "p")
    check_chunk({"choices": [{"index": 0, "delta": {"content": "x"}}], "usage": None}, "p")
    for chunk in ({"choices": "x"}, {"choices": [{"delta": "x"}]}, {"choices": [], "usage": {"prompt_tokens": -5}}):  # fmt: skip
        malformed(lambda chunk=chunk: check_chunk(chunk, "p"))


CANDIDATE = {"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}


@pytest.mark.parametrize(
    "data",
    [
        {"error": {"code": 500, "message": "boom"}},
        {"candidates": CANDIDATE},
        {"candidates": [CANDIDATE, "x"]},
        {"candidates": [{"content": "text"}]},
        {"candidates": [{"content": {"parts": "text"}}]},
        {"candidates": [{"content": {"parts": [{"text": 5}]}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}}]},
        {"candidates": []},  # nothing generated and nothing blocked
        {"candidates": [CANDIDATE], "usageMetadata": {"promptTokenCount": 10**13}},
        {"candidates": [CANDIDATE], "usageMetadata": {"candidatesTokenCount": -2}},
        {"candidates": [CANDIDATE], "usageMetadata": [3]},
        {"candidates": [CANDIDATE], "usageMetadata": {"promptTokenCount": MAX_TOKENS, "toolUsePromptTokenCount": 1}},
        {"candidates": [{**CANDIDATE, "finishReason": ["STOP"]}]},
    ],
)  # fmt: skip
def test_gemini_answers_that_are_no_answer(data: dict[str, Any]) -> None:
    malformed(lambda: translated("Gemini", lambda: gemini_response.to_completion(data, "m")))


def test_gemini_stream_event_of_the_wrong_shape() -> None:
    translator = gemini_response.StreamTranslator("m", include_usage=True)
    assert translator.feed({"candidates": [CANDIDATE]})  # a good one
    malformed(lambda: translator.feed({"candidates": "x"}))
    malformed(lambda: translator.feed({"usageMetadata": {"promptTokenCount": 1.5}}))


@pytest.mark.parametrize(
    "data",
    [
        {"type": "error", "error": {"type": "api_error", "message": "boom"}},
        {"content": "ok"},
        {"content": [1]},
        {"content": [{"type": "text", "text": 3}]},
        {"content": [{"type": "tool_use", "input": {}}]},
        {"content": [], "usage": {"input_tokens": 10**13}},
        {"content": [], "usage": {"input_tokens": 1, "cache_read_input_tokens": -1}},
        {"content": [], "usage": "many"},
    ],
)
def test_claude_answers_that_are_no_answer(data: dict[str, Any]) -> None:
    malformed(
        lambda: translated("Claude", lambda: anthropic_response.to_completion(data, "m", None))
    )


def test_claude_stream_events_of_the_wrong_shape() -> None:
    def fresh() -> anthropic_response.StreamTranslator:
        return anthropic_response.StreamTranslator("m", include_usage=True, structured=None)

    start = {"type": "message_start", "message": {"id": "x", "usage": {"input_tokens": 3}}}
    assert fresh().feed(start)
    for event in (
        {"type": "message_start", "message": "x"},
        {"type": "message_start", "message": {"usage": {"input_tokens": 10**13}}},
        {"type": "content_block_start", "index": 0, "content_block": ["text"]},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 1}},
        {"type": "message_delta", "delta": {}, "usage": {"output_tokens": -1}},
    ):
        translator = fresh()
        translator.feed(start)
        malformed(lambda t=translator, e=event: translated("Claude", lambda: t.feed(e)))


def test_malformed_follows_the_server_error_retry_policy() -> None:
    policy = RetryPolicy({FailureKind.SERVER_ERROR: 3, FailureKind.TIMEOUT: 0}, 7.0)
    assert policy.retries(FailureKind.MALFORMED) == 3
    assert policy.max_wait_s(FailureKind.MALFORMED) == 7.0
