"""What the provider batch backends share: following provider URLs, the registry by provider
type, and the configuration they read."""

from __future__ import annotations

import pytest

from nemorouter.config import ConfigError, ProviderConfig, parse_config
from nemorouter.providers.deferred_anthropic import AnthropicBatches
from nemorouter.providers.deferred_backends import build_deferred
from nemorouter.providers.deferred_gemini import GeminiBatches
from nemorouter.providers.deferred_http import origin_path
from nemorouter.providers.deferred_openai import OpenAIBatchBackend
from nemorouter.providers.deferred_vertex import VertexBatches
from nemorouter.providers.deferred_vertex_claude import VertexClaudeBatches
from nemorouter.testing import FakeOAuthServer
from nemorouter.types.target import Target
from nemorouter.types.upstream import FailureKind, UpstreamFailure

from .helpers import SETTINGS


def test_a_provider_url_is_followed_only_on_its_own_origin() -> None:
    base = "https://api.anthropic.com"
    url = "https://api.anthropic.com/v1/messages/batches/msgbatch_1/results"
    assert origin_path(base, url) == "/v1/messages/batches/msgbatch_1/results"
    assert (
        origin_path("http://127.0.0.1:9/prefix", "http://127.0.0.1:9/prefix/up?id=1") == "/up?id=1"
    )
    assert origin_path(base, "files/abc") == "/files/abc"
    with pytest.raises(UpstreamFailure) as caught:
        origin_path(base, "https://elsewhere.example/v1/messages/batches/x/results")
    assert caught.value.kind is FailureKind.MALFORMED  # never our key to another host


async def test_an_empty_part_is_refused_before_any_call() -> None:
    backend = AnthropicBatches("a", ProviderConfig(type="anthropic", api_key="k"), SETTINGS)
    with pytest.raises(ValueError, match="at least one line"):
        await backend.submit(Target("d", "m", "m", 1, 1, None), [])
    await backend.close()


def test_backends_by_provider_type(tmp_path) -> None:
    with FakeOAuthServer() as oauth:
        key = str(oauth.create_account().write(tmp_path / "key.json"))
        vertex = {"project": "p", "credentials": key, "batch_bucket": "gs://b/x"}
        made = {
            "anthropic": build_deferred(
                "a", ProviderConfig(type="anthropic", api_key="k"), SETTINGS
            ),
            "gemini": build_deferred("g", ProviderConfig(type="gemini", api_key="k"), SETTINGS),
            "vertex": build_deferred(
                "v", ProviderConfig(type="vertex", location="us-central1", **vertex), SETTINGS
            ),
            "anthropic-vertex": build_deferred(
                "c",
                ProviderConfig(type="anthropic-vertex", location="us-east5", **vertex),
                SETTINGS,
            ),
        }
        assert isinstance(made["anthropic"], AnthropicBatches)
        assert isinstance(made["gemini"], GeminiBatches)
        assert type(made["vertex"]) is VertexBatches
        assert isinstance(made["anthropic-vertex"], VertexClaudeBatches)
        unstaged = ProviderConfig(
            type="vertex", location="us-central1", project="p", credentials=key
        )
        assert build_deferred("v", unstaged, SETTINGS) is None
        openai = build_deferred("o", ProviderConfig(type="openai", api_key="k"), SETTINGS)
        assert isinstance(openai, OpenAIBatchBackend)  # the OpenAI Batch API (the gateway's)


def test_storage_url_is_for_vertex_providers_only() -> None:
    raw = {
        "settings": {"master_key": SETTINGS.master_key},
        "providers": {"g": {"type": "gemini", "api_key": "k", "storage_url": "http://127.0.0.1:1"}},
        "deployments": [{"id": "d", "model": "gemini-2.5-flash", "provider": "g"}],
    }
    with pytest.raises(ConfigError, match="storage_url"):
        parse_config(raw, env={})
    raw["providers"]["g"] = {"type": "gemini", "api_key": "k"}
    assert parse_config(raw, env={}).providers["g"].storage_url is None


def test_anthropic_results_of_every_kind() -> None:
    from nemorouter.providers.deferred_anthropic import outcome
    from nemorouter.types.deferred import DeferredLine

    line = DeferredLine("l1", {}, "/v1/messages")
    usage = {"input_tokens": 11, "output_tokens": 5}
    ok = outcome(line, {"type": "succeeded", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "usage": usage,
    }}, "label")  # fmt: skip
    assert ok.response["choices"][0]["message"]["content"] == "hi"
    assert ok.usage["prompt_tokens"] == 11 and ok.response["model"] == "label"
    # an answer that cannot be read is an error line that still carries what was paid for
    broken = outcome(line, {"type": "succeeded", "message": {"content": "x", "usage": usage}}, "m")
    assert broken.error["code"] == "malformed" and broken.usage["prompt_tokens"] == 11
    errored = outcome(line, {"type": "errored", "error": {"type": "error", "error": {
        "type": "invalid_request_error", "message": "max_tokens: too large",
    }}}, "m")  # fmt: skip
    assert errored.error == {"code": "invalid_request_error", "message": "max_tokens: too large"}
    assert outcome(line, {"type": "expired"}, "m").error["code"] == "expired"
    assert outcome(line, {"type": "canceled"}, "m").error["code"] == "cancelled"
    assert outcome(line, None, "m").error["code"] == "malformed"


def test_gemini_line_results_of_every_kind() -> None:
    from nemorouter.providers.deferred_gemini import line_outcome
    from nemorouter.types.deferred import DeferredLine

    line = DeferredLine("l1", {}, "/v1beta/models/m:generateContent")
    response = {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}
        ],
        "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 2, "totalTokenCount": 9},
    }
    ok = line_outcome(line, {"key": "l1", "response": response}, "label")
    assert (
        ok.response["choices"][0]["message"]["content"] == "ok" and ok.usage["prompt_tokens"] == 7
    )
    failed = line_outcome(
        line,
        {"key": "l1", "error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}},
        "m",
    )
    assert failed.error == {"code": "INVALID_ARGUMENT", "message": "bad"}
    vertex = line_outcome(line, {"status": "Internal error encountered.", "request": {}}, "m")
    assert vertex.error == {"code": "error", "message": "Internal error encountered."}


def test_result_lines_of_the_wrong_shape_match_no_line() -> None:
    from nemorouter.providers.deferred_vertex import LineMatcher
    from nemorouter.types.deferred import DeferredLine

    sent = [DeferredLine("a", {"contents": []}, "/p")]
    match = LineMatcher(sent)
    assert match({"request": {"labels": ["not", "a", "map"], "x": 1}}) is None
    assert match({"request": {"labels": {"nemorouter_line": "7"}, "x": 1}}) is None  # no line 7
    assert match({"request": {"contents": [], "labels": "x"}}) is sent[0]  # by its content
