"""Per-request cache controls: nemo_cache and LiteLLM's cache object; 400 when malformed."""

from __future__ import annotations

from typing import Any

import pytest

from nemorouter.types.errors import GatewayError
from nemorouter.types.options import cache_controls


@pytest.mark.parametrize(
    ("extras", "expected"),
    [
        ({}, (True, True)),
        ({"nemo_cache": True}, (True, True)),
        ({"nemo_cache": False}, (False, False)),
        ({"nemo_cache": None}, (True, True)),
        ({"cache": {"no-cache": True}}, (False, True)),
        ({"cache": {"no-store": True}}, (True, False)),
        ({"cache": {"no-cache": True, "no-store": True}}, (False, False)),
        ({"cache": {"no-cache": False, "no-store": False}}, (True, True)),
        ({"cache": {"ttl": 300, "s-maxage": 60, "namespace": "ns"}}, (True, True)),
        ({"cache": {}}, (True, True)),
        ({"cache": None}, (True, True)),
        ({"nemo_cache": True, "cache": {"no-store": True}}, (True, False)),
        ({"nemo_cache": False, "cache": {"no-cache": False}}, (False, False)),
        ({"metadata": {"job_id": "j"}, "tags": ["vision"]}, (True, True)),
    ],
)
def test_controls(extras: dict[str, Any], expected: tuple[bool, bool]) -> None:
    assert cache_controls(extras) == expected


@pytest.mark.parametrize(
    ("extras", "param", "words"),
    [
        ({"nemo_cache": "false"}, "nemo_cache", "boolean"),
        ({"nemo_cache": 0}, "nemo_cache", "boolean"),
        ({"cache": True}, "cache", "object"),
        ({"cache": "no-cache"}, "cache", "object"),
        ({"cache": {"no-cache": "yes"}}, "cache", "'cache.no-cache' must be a boolean"),
        ({"cache": {"no_cache": True}}, "cache", "not a cache control"),
        ({"cache": {"ttl": "300"}}, "cache", "integer"),
        ({"cache": {"ttl": True}}, "cache", "integer"),
        ({"cache": {"ttl": -1}}, "cache", "negative"),
        ({"cache": {"namespace": 3}}, "cache", "string"),
    ],
)
def test_malformed_is_a_400(extras: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(GatewayError) as caught:
        cache_controls(extras)
    error = caught.value
    assert (error.status, error.code, error.param) == (400, "invalid_request", param)
    assert words in error.message
