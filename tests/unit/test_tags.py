"""Required tags and the route plan (DESIGN §2.2)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from nemorouter.config import parse_config
from nemorouter.core.candidates import Offer, plan
from nemorouter.core.deployments import DeploymentPool
from nemorouter.core.tags import parse_tags, required_tags
from nemorouter.types.errors import GatewayError
from nemorouter.types.request import parse_chat_request

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
SCHEMA = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}


def request(content: Any = "hi", **extra: Any) -> Any:
    body = {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}
    return parse_chat_request(json.dumps(body).encode())


def test_parse_tags_forms() -> None:
    assert parse_tags(["Vision", " pdf "], "tags") == {"vision", "pdf"}
    assert parse_tags("vision, long-context,,", "tags") == {"vision", "long-context"}
    assert parse_tags(["job:batch-7", "vision"], "metadata.tags") == {"vision"}
    assert parse_tags(None, "tags") == frozenset()
    for bad in (5, {"a": 1}, ["ok", 3], ["bad tag!"]):
        with pytest.raises(GatewayError) as info:
            parse_tags(bad, "tags")
        assert info.value.status == 400


def test_explicit_sources_are_united_and_replace_defaults() -> None:
    defaults = frozenset({"pdf"})
    r = request(tags="vision", metadata={"tags": ["long-context", "job:j1"]})
    assert required_tags(r, b"tools", defaults) == {"vision", "long-context", "tools"}
    assert required_tags(request(), None, defaults) == {"pdf"}
    assert required_tags(request(), b"", defaults) == {"pdf"}


def test_implied_tags_add_to_explicit_and_defaults() -> None:
    r = request([{"type": "text", "text": "read"}, IMAGE], response_format=SCHEMA)
    assert required_tags(r, None, frozenset()) == {"vision", "structured-output"}
    assert required_tags(r, b"pdf", frozenset({"tools"})) == {"vision", "structured-output", "pdf"}
    assert (
        required_tags(request(response_format={"type": "json_object"}), None, frozenset()) == set()
    )


def test_metadata_must_be_an_object() -> None:
    with pytest.raises(GatewayError, match="metadata"):
        required_tags(request(metadata=["x"]), None, frozenset())


def pool() -> DeploymentPool:
    config = parse_config(
        {
            "settings": {"master_key": "sk-test-master-key"},
            "providers": {"p": {"type": "openai-compatible", "base_url": "http://127.0.0.1:9/v1"}},
            "deployments": [
                {"id": "llama", "model": "llama-3.1-405b-instruct-maas", "provider": "p"},
                {"id": "pro", "model": "gemini-2.5-pro", "provider": "p"},
                {"id": "sonnet", "model": "claude-sonnet-4-5", "provider": "p"},
                {
                    "id": "small-vlm",
                    "model": "tiny-vlm",
                    "provider": "p",
                    "tags": ["vision"],
                    "context_window": 4000,
                    "pricing": {"input_per_mtok": "0", "output_per_mtok": "0"},
                },
                {"id": "flash-eu", "model": "gemini-2.5-flash", "provider": "p", "tags": ["eu"]},
                {"id": "flash-us", "model": "gemini-2.5-flash", "provider": "p"},
            ],
            "groups": {
                "docs": ["llama-3.1-405b-instruct-maas", "claude-sonnet-4-5", "gemini-2.5-pro"]
            },
        },
        env={},
    )
    return DeploymentPool(config, {"p": object()})  # type: ignore[dict-item]


def test_plan_filters_group_links_and_keeps_order(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nemorouter.routing")
    links = plan(pool(), "docs", frozenset({"vision", "structured-output"}), 100, "r1")
    # Claude answers json_schema too (natively or by a forced tool: catalog structured_output)
    assert [link.model for link in links] == ["claude-sonnet-4-5", "gemini-2.5-pro"]
    assert (
        "skipping llama-3.1-405b-instruct-maas in docs: lacks [structured-output, vision]"
        in caplog.text
    )
    links = plan(pool(), "docs", frozenset({"vision", "audio"}), 100, "r2")
    assert [link.model for link in links] == ["gemini-2.5-pro"]
    assert "skipping claude-sonnet-4-5 in docs: lacks [audio]" in caplog.text


def test_plan_filters_deployments_of_one_model() -> None:
    links = plan(pool(), "gemini-2.5-flash", frozenset({"vision", "eu"}), 100, "r")
    assert [d.id for d in links[0].deployments] == ["flash-eu"]


def test_named_model_lacking_a_tag_is_a_400_naming_alternatives() -> None:
    with pytest.raises(GatewayError) as info:
        plan(pool(), "llama-3.1-405b-instruct-maas", frozenset({"vision"}), 100, "r")
    error = info.value
    assert (error.status, error.code) == (400, "tag_mismatch")
    assert "lacks [vision]" in error.message
    assert "gemini-2.5-pro" in error.message
    assert "tiny-vlm" in error.message


def test_window_too_small_removes_a_model() -> None:
    links = plan(pool(), "auto", frozenset({"vision"}), 10_000, "r")
    assert "tiny-vlm" not in [link.model for link in links]
    with pytest.raises(GatewayError) as info:
        plan(pool(), "tiny-vlm", frozenset({"vision"}), 10_000, "r")
    assert "context window (4000 tokens)" in info.value.message
    assert [link.model for link in plan(pool(), "tiny-vlm", frozenset({"vision"}), 3_000, "r")] == [
        "tiny-vlm"
    ]


def test_auto_with_unsatisfiable_tags_is_a_400() -> None:
    with pytest.raises(GatewayError) as info:
        plan(pool(), "auto", frozenset({"audio", "eu", "embedding"}), 10, "r")
    assert info.value.code == "tag_mismatch"
    assert "No configured model satisfies them" in info.value.message
    with pytest.raises(GatewayError) as info:
        plan(pool(), "gpt-9", frozenset(), 10, "r")
    assert info.value.status == 404


def test_request_fallbacks_override_the_configured_chain() -> None:
    links = plan(pool(), "docs", frozenset(), 10, "r", fallbacks=["gemini-2.5-flash"])
    assert [link.model for link in links] == ["llama-3.1-405b-instruct-maas", "gemini-2.5-flash"]
    links = plan(pool(), "gemini-2.5-pro", frozenset(), 10, "r", fallbacks=["claude-sonnet-4-5"])
    assert [link.model for link in links] == ["gemini-2.5-pro", "claude-sonnet-4-5"]
    links = plan(pool(), "docs", frozenset(), 10, "r", disable_fallbacks=True)
    assert [link.model for link in links] == ["llama-3.1-405b-instruct-maas"]
    # the request's fallbacks pass the same tag filter
    links = plan(pool(), "gemini-2.5-pro", frozenset({"vision"}), 10, "r",
                 fallbacks=["llama-3.1-405b-instruct-maas", "claude-sonnet-4-5"])  # fmt: skip
    assert [link.model for link in links] == ["gemini-2.5-pro", "claude-sonnet-4-5"]


def test_unknown_fallback_models_are_400() -> None:
    # (their types are checked at the edge: tests/unit/test_request_options.py)
    with pytest.raises(GatewayError) as info:
        plan(pool(), "docs", frozenset(), 10, "r", fallbacks=["gpt-9"])
    assert info.value.status == 400
    assert info.value.param == "fallbacks"


@pytest.mark.parametrize(
    "tags", [frozenset(), frozenset({"vision"}), frozenset({"eu"}), frozenset({"vision", "eu"})]
)
def test_models_listing_offers_what_a_request_with_those_tags_could_reach(
    tags: frozenset[str],
) -> None:
    """/v1/models?tags= filters with the route plan's own tag rule: a model is listed
    exactly when `auto` with those tags (and a prompt any window holds) may use it, with
    all of its deployments; a group is listed with its models that qualify."""
    deployments = pool()
    offer = Offer(deployments, tags)
    reachable = {link.model for link in plan(deployments, "auto", tags, 0, "r")}
    assert set(offer.models) == reachable
    assert all(offer.models[m] == deployments.by_model[m] for m in offer.models)
    try:
        docs = [link.model for link in plan(deployments, "docs", tags, 0, "r")]
    except GatewayError:  # no model of the group qualifies
        docs = []
    assert offer.groups == ({"docs": docs} if docs else {})


def test_models_listing_with_unsatisfiable_tags_is_empty() -> None:
    offer = Offer(pool(), frozenset({"no-such-capability"}))
    assert (offer.models, offer.groups) == ({}, {})
