"""Every stream asks its provider for usage (the gateway costs it); the client's own wish is
read once (ChatRequest.wants_usage) and the canonical body is never rewritten."""

from __future__ import annotations

from typing import Any

import pytest

from nemorouter.config import parse_config
from nemorouter.providers import build_adapter
from nemorouter.providers.base import ProviderAdapter
from nemorouter.types.target import Target

KINDS = {
    "openai": {"type": "openai", "api_key": "sk-x", "base_url": "http://x:9/v1"},
    "anthropic": {"type": "anthropic", "api_key": "sk-ant-x", "base_url": "http://x:9"},
    "gemini": {"type": "gemini", "api_key": "g-x", "base_url": "http://x:9"},
}


def adapter(kind: str) -> ProviderAdapter:
    config = parse_config(
        {
            "settings": {"master_key": "sk-test-master-key"},
            "providers": {"p": KINDS[kind]},
            "deployments": [{"id": "d", "model": "gemini-2.5-flash", "provider": "p"}],
        },
        env={},
    )
    return build_adapter("p", config.providers["p"], config.settings)


def target() -> Target:
    return Target("d", "pm", "m", 1000, 0, None)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("stream_options", [None, {"include_usage": False, "x": 1}])
def test_a_stream_always_reports_usage(kind: str, stream_options: Any) -> None:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    if stream_options is not None:
        body["stream_options"] = stream_options
    before = {**body}
    streamed = adapter(kind).prepare(target(), {**body, "stream": True}, {}, stream=True)
    assert streamed.include_usage is True
    if kind == "openai":
        assert streamed.wire["stream_options"] == {**(stream_options or {}), "include_usage": True}
    assert body == before
    whole = adapter(kind).prepare(target(), body, {}, stream=False)
    assert whole.include_usage is False
    assert "stream_options" not in whole.wire or whole.wire["stream_options"] == stream_options
