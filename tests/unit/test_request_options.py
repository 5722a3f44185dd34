"""The gateway fields and the body's derived facts, decoded once at the edge."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nemorouter.core.record import job_id_of
from nemorouter.core.request import reserve_tokens
from nemorouter.store.schema import spend
from nemorouter.types.body import max_output_of
from nemorouter.types.errors import GatewayError
from nemorouter.types.options import MAX_JOB_ID, NO_OPTIONS
from nemorouter.types.request import parse_chat_request

USER = [{"role": "user", "content": "hi"}]


def parse(**fields: Any) -> Any:
    return parse_chat_request(json.dumps({"model": "m", "messages": USER, **fields}).encode())


def test_a_request_without_gateway_fields_shares_the_empty_options() -> None:
    assert parse(temperature=0).options is NO_OPTIONS


def test_options_are_decoded_once_and_removed_from_the_body() -> None:
    request = parse(
        tags="Vision, eu",
        metadata={"tags": ["pdf", "job:Batch-7"], "run": 3},
        cache={"no-store": True},
        fallbacks=["b", "c"],
    )
    options = request.options
    assert options.tags == {"vision", "eu", "pdf"}  # the job tag is not a capability
    assert options.job_id is None and options.job_tag == "Batch-7"
    assert (options.cache_read, options.cache_write) == (True, False)
    assert options.fallbacks == ["b", "c"] and options.disable_fallbacks is False
    assert set(request.body) == {"model", "messages"}


def test_job_id_precedence_body_then_header_then_tag() -> None:
    tagged = parse(metadata={"job_id": 42, "tags": "job:t"})
    assert job_id_of(tagged, b"h") == "42"
    only_tag = parse(metadata={"tags": "job:t"})
    assert job_id_of(only_tag, b" h ") == "h"
    assert job_id_of(only_tag, None) == "t"
    assert job_id_of(parse(), None) is None


def test_an_unused_job_tag_is_not_checked() -> None:
    # `job:` alone is refused only when it is the job id the request ends up with.
    request = parse(metadata={"job_id": "j", "tags": ["job:"]})
    assert job_id_of(request, None) == "j"
    with pytest.raises(GatewayError, match=r"metadata\.tags"):
        job_id_of(parse(metadata={"tags": ["job:"]}), None)


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"metadata": {"job_id": ""}}, "'metadata.job_id' must be a non-empty string"),
        ({"nemo_cache": "no"}, "'nemo_cache' must be a boolean."),
        ({"tags": 3}, "'tags' must be a list of tags or a comma-separated string."),
        ({"metadata": [1]}, "'metadata' must be an object."),
        ({"metadata": {"tags": [1]}}, "'metadata.tags' must contain only strings."),
        ({"disable_fallbacks": "yes"}, "'disable_fallbacks' must be a boolean."),
        ({"fallbacks": "b"}, "'fallbacks' must be a list of model names."),
    ],
)
def test_malformed_gateway_fields_are_a_400_at_the_edge(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(GatewayError) as caught:
        parse(**fields)
    assert caught.value.status == 400
    assert words in caught.value.message


def test_disabled_fallbacks_ignore_the_fallback_list() -> None:
    options = parse(disable_fallbacks=True, fallbacks="anything").options
    assert options.disable_fallbacks is True and options.fallbacks is None


def test_the_job_id_bound_is_the_spend_column() -> None:
    assert spend.c.job_id.type.length == MAX_JOB_ID


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, None),
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 50, "max_tokens": 100}, 50),
        ({"max_completion_tokens": 0, "max_tokens": 100}, 100),
        ({"max_completion_tokens": None, "max_tokens": 100}, 100),
        ({"max_tokens": True}, None),
        ({"max_tokens": 10.0}, None),
        ({"max_tokens": "10"}, None),
    ],
)
def test_max_output_has_one_meaning(fields: dict[str, Any], expected: int | None) -> None:
    assert max_output_of(fields) == expected
    request = parse(**fields)
    assert request.max_output == expected
    # the tpm reservation counts the same output bound (else its default)
    assert reserve_tokens(request) - reserve_tokens(parse()) == (expected or 512) - 512


@pytest.mark.parametrize(
    ("stream_options", "expected"),
    [(None, False), ({"include_usage": True}, True), ({"include_usage": 1}, False), ([], False)],
)
def test_wants_usage_is_read_once(stream_options: Any, expected: bool) -> None:
    fields = (
        {"stream": True}
        if stream_options is None
        else {"stream": True, "stream_options": stream_options}
    )
    request = parse(**fields)
    assert request.wants_usage is expected
    assert request.body.get("stream_options") == stream_options  # the body is not rewritten
