"""DESIGN §2.2 through the official SDK: tags, implied tags, groups, auto, mismatches."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nemorouter.config import parse_config
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider

from .conftest import MASTER_KEY, fresh_sqlite_url

IMAGE = {
    "type": "image_url",
    "image_url": {"url": "data:image/png;base64," + base64.b64encode(b"\x89PNG" * 50).decode()},
}
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "inv",
        "schema": {"type": "object", "properties": {"total": {"type": "number"}}},
    },
}
PRICE = {"input_per_mtok": "0", "output_per_mtok": "0"}

# Deployment id -> the tags it really has (catalog + own), for assertions.
DEPLOYMENTS: list[dict[str, Any]] = [
    {"id": "llama", "model": "llama-3.1-405b-instruct-maas"},  # text only, 128k
    # vision, no structured-output (Claude answers json_schema: catalog structured_output)
    {"id": "maverick", "model": "llama-4-maverick-17b-128e-instruct-maas"},
    {"id": "pro", "model": "gemini-2.5-pro"},  # vision + structured-output, 1M
    {"id": "flash-eu", "model": "gemini-2.5-flash", "tags": ["eu"]},
    {"id": "flash-us", "model": "gemini-2.5-flash"},
    {
        "id": "tiny",
        "model": "tiny-vlm",
        "tags": ["vision"],
        "context_window": 3000,
        "pricing": PRICE,
    },
]


@pytest.fixture(scope="module")
def routed() -> Iterator[tuple[BackgroundGateway, SimulatedProvider]]:
    with SimulatedProvider() as sim:
        config = parse_config(
            {
                "settings": {
                    "master_key": MASTER_KEY,
                    "default_tags": [],
                    "cache": {"enabled": False},  # every request must be routed
                    "database_url": fresh_sqlite_url(),
                },
                "providers": {
                    "sim": {
                        "type": "openai-compatible",
                        "base_url": sim.base_url,
                        "api_key": "none",
                    }
                },
                "deployments": [{**d, "provider": "sim"} for d in DEPLOYMENTS],
                "groups": {
                    "docs": [
                        "llama-3.1-405b-instruct-maas",
                        "llama-4-maverick-17b-128e-instruct-maas",
                        "gemini-2.5-pro",
                    ],
                    "text-only": ["llama-3.1-405b-instruct-maas"],
                },
            },
            env={},
        )
        with BackgroundGateway(config) as gateway:
            yield gateway, sim


@pytest.fixture
def client(routed: tuple[BackgroundGateway, SimulatedProvider]) -> openai.OpenAI:
    routed[1].clear()
    return openai.OpenAI(base_url=routed[0].base_url, api_key=MASTER_KEY, max_retries=0)


def deployment_tags(gateway: BackgroundGateway, deployment_id: str) -> frozenset[str]:
    pool = gateway.app.services.pool
    return next(d.tags for deps in pool.by_model.values() for d in deps if d.id == deployment_id)


def ask(client: openai.OpenAI, model: str, content: Any = "hi", **kw: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}], **kw
    )


def test_image_part_implies_vision_through_a_group(client: openai.OpenAI) -> None:
    raw = ask(client, "docs", [{"type": "text", "text": "read"}, IMAGE])
    # llama-3.1 (text only) skipped
    assert raw.headers["x-nemo-model"] == "llama-4-maverick-17b-128e-instruct-maas"


def test_json_schema_implies_structured_output(client: openai.OpenAI) -> None:
    raw = ask(client, "docs", [{"type": "text", "text": "read"}, IMAGE], response_format=SCHEMA)
    assert raw.headers["x-nemo-model"] == "gemini-2.5-pro"


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"extra_body": {"tags": ["eu"]}}, "flash-eu"),
        ({"extra_body": {"tags": "eu, vision"}}, "flash-eu"),
        ({"extra_body": {"metadata": {"tags": ["eu", "job:batch-1"]}}}, "flash-eu"),
        ({"extra_headers": {"x-nemo-tags": "eu"}}, "flash-eu"),
        ({"extra_headers": {"x-litellm-tags": "eu"}}, "flash-eu"),
    ],
)
def test_every_place_tags_can_be_named(
    client: openai.OpenAI, kw: dict[str, Any], expected: str
) -> None:
    for _ in range(4):  # two flash deployments share the load; only one has `eu`
        assert ask(client, "gemini-2.5-flash", **kw).headers["x-nemo-deployment"] == expected


def test_multi_tag_intersection_with_auto(client: openai.OpenAI) -> None:
    raw = ask(client, "auto", extra_body={"tags": ["vision", "eu", "structured-output"]})
    assert raw.headers["x-nemo-deployment"] == "flash-eu"


def test_named_model_lacking_a_tag_is_400_and_no_provider_call(
    client: openai.OpenAI, routed: tuple[BackgroundGateway, SimulatedProvider]
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        ask(client, "llama-3.1-405b-instruct-maas", [{"type": "text", "text": "read"}, IMAGE])
    body = info.value.body
    assert isinstance(body, dict)
    assert body["code"] == "tag_mismatch"
    assert "lacks [vision]" in body["message"]
    assert "gemini-2.5-pro" in body["message"]
    assert routed[1].requests == []


def test_group_with_no_qualifying_link_and_auto_with_no_model(
    client: openai.OpenAI, routed: tuple[BackgroundGateway, SimulatedProvider]
) -> None:
    with pytest.raises(openai.BadRequestError, match=r"no model of group 'text-only'"):
        ask(client, "text-only", [IMAGE])
    with pytest.raises(openai.BadRequestError, match="No configured model satisfies"):
        ask(client, "auto", extra_body={"tags": ["embedding", "vision"]})
    assert routed[1].requests == []


def test_prompt_too_long_for_a_window_skips_that_model(client: openai.OpenAI) -> None:
    long_text = "x" * 20_000  # ~5,000 tokens: more than tiny-vlm's 3,000-token window
    with pytest.raises(openai.BadRequestError, match="context window"):
        ask(client, "tiny-vlm", [{"type": "text", "text": long_text}, IMAGE])
    assert ask(client, "tiny-vlm", [IMAGE]).headers["x-nemo-deployment"] == "tiny"


def test_models_endpoint_filters_by_tags(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list(extra_query={"tags": "vision,structured-output"}).data]
    assert ids == ["gemini-2.5-pro", "gemini-2.5-flash", "docs", "auto"]
    eu = client.models.list(extra_query={"tags": "eu"}).data
    assert [m.id for m in eu] == ["gemini-2.5-flash", "auto"]
    entry = eu[0].model_dump()
    assert {"eu", "vision", "long-context"} <= set(entry["tags"])
    assert entry["max_output_tokens"] == 65535


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(
        ["auto", "docs", "text-only", *dict.fromkeys(d["model"] for d in DEPLOYMENTS)]
    ),
    tags=st.lists(
        st.sampled_from(["vision", "eu", "tools", "pdf", "structured-output", "audio"]),
        max_size=2,
        unique=True,
    ),
    with_image=st.booleans(),
    with_schema=st.booleans(),
)
def test_property_answers_only_from_deployments_with_every_tag(
    routed: tuple[BackgroundGateway, SimulatedProvider],
    name: str,
    tags: list[str],
    with_image: bool,
    with_schema: bool,
) -> None:
    gateway, sim = routed
    sim.clear()
    client = openai.OpenAI(base_url=gateway.base_url, api_key=MASTER_KEY, max_retries=0)
    content: Any = [{"type": "text", "text": "read"}, *([IMAGE] if with_image else [])]
    kw: dict[str, Any] = {"extra_body": {"tags": tags}}
    if with_schema:
        kw["response_format"] = SCHEMA
    required = (
        set(tags)
        | ({"vision"} if with_image else set())
        | ({"structured-output"} if with_schema else set())
    )
    try:
        raw = ask(client, name, content, **kw)
    except openai.BadRequestError as error:
        assert isinstance(error.body, dict)
        assert error.body["code"] == "tag_mismatch"
        assert sim.requests == []
        return
    assert required <= deployment_tags(gateway, raw.headers["x-nemo-deployment"])
    assert len(sim.requests) == 1
