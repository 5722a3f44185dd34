"""The response cache through a real gateway: identical pages answered once, per scope,
with single flight, streaming hits, and the saving recorded."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider
from tests.unit.cache.images import data_url, page_png

from .conftest import MASTER_KEY, GatewayFactory, gateway_config

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


def page_messages(url: str) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Extract the invoice total."},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]


@pytest.fixture
def cached(sim: SimulatedProvider, start_gateway: GatewayFactory) -> BackgroundGateway:
    return start_gateway(gateway_config(sim, cache={"enabled": True}))


def ask(client: openai.OpenAI, messages: list[dict[str, Any]], **extra: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model="gemini-2.5-flash", messages=messages, **extra
    )


def test_the_same_page_hits_however_it_is_wrapped(
    cached: BackgroundGateway, sim: SimulatedProvider
) -> None:
    client = openai.OpenAI(base_url=cached.base_url, api_key=MASTER_KEY, max_retries=0)
    page = page_png()
    first = ask(client, page_messages(data_url(page)), extra_body={"metadata": {"job_id": "c"}})
    assert first.headers["x-nemo-cache"] == "MISS"
    cost = Decimal(first.headers["x-nemo-response-cost"])
    assert cost > 0
    wrapped = data_url(page, "data:image/png;name=page-1.png;base64,", wrap=True)
    second = ask(client, page_messages(wrapped), extra_body={"metadata": {"job_id": "c"}})
    assert second.headers["x-nemo-cache"] == "HIT"
    assert second.headers["x-nemo-response-cost"] == "0"
    assert second.headers["x-nemo-model"] == first.headers["x-nemo-model"]
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert sim.request_count == 1

    changed = ask(client, page_messages(data_url(page_png(flip=(10, 10)))))
    assert changed.headers["x-nemo-cache"] == "MISS"
    skipped = ask(client, page_messages(data_url(page)), extra_body={"nemo_cache": False})
    assert skipped.headers["x-nemo-cache"] == "SKIP"
    assert sim.request_count == 3

    job = httpx.get(f"{cached.url}/admin/jobs/c", headers=ADMIN).json()
    assert job["requests"] == 2 and job["cache_hits"] == 1
    assert Decimal(job["cost_usd"]) == cost  # the hit cost nothing


def test_litellm_cache_controls(cached: BackgroundGateway, sim: SimulatedProvider) -> None:
    client = openai.OpenAI(base_url=cached.base_url, api_key=MASTER_KEY, max_retries=0)
    messages = [{"role": "user", "content": "cover sheet"}]
    no_store = ask(client, messages, extra_body={"cache": {"no-store": True}})
    assert no_store.headers["x-nemo-cache"] == "MISS"
    assert ask(client, messages).headers["x-nemo-cache"] == "MISS"  # nothing was stored
    assert ask(client, messages).headers["x-nemo-cache"] == "HIT"
    no_cache = ask(client, messages, extra_body={"cache": {"no-cache": True}})
    assert no_cache.headers["x-nemo-cache"] == "MISS"  # not read, but written
    with pytest.raises(openai.BadRequestError):
        ask(client, messages, extra_body={"cache": {"no_cache": True}})
    assert sim.request_count == 3


def test_teams_never_share_answers(cached: BackgroundGateway, sim: SimulatedProvider) -> None:
    def team_key(name: str) -> str:
        team = httpx.post(f"{cached.url}/admin/teams", json={"name": name}, headers=ADMIN).json()
        body = {"name": name, "team_id": team["id"]}
        return httpx.post(f"{cached.url}/admin/keys", json=body, headers=ADMIN).json()["key"]

    keys = [team_key("red"), team_key("blue")]
    messages = [{"role": "user", "content": "same question, two teams"}]
    for key in keys:
        client = openai.OpenAI(base_url=cached.base_url, api_key=key, max_retries=0)
        assert ask(client, messages).headers["x-nemo-cache"] == "MISS"
        assert ask(client, messages).headers["x-nemo-cache"] == "HIT"
    assert sim.request_count == 2


def test_single_flight_makes_one_upstream_call(
    cached: BackgroundGateway, sim: SimulatedProvider
) -> None:
    sim.latency_ms = 300
    client = openai.OpenAI(base_url=cached.base_url, api_key=MASTER_KEY, max_retries=0)
    messages = page_messages(data_url(page_png((300, 200))))
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: ask(client, messages), range(20)))
    assert sim.request_count == 1
    statuses = sorted(a.headers["x-nemo-cache"] for a in answers)
    assert statuses == ["HIT"] * 19 + ["MISS"]
    assert len({a.parse().choices[0].message.content for a in answers}) == 1


def test_streaming_requests_hit_and_are_replayed(
    cached: BackgroundGateway, sim: SimulatedProvider
) -> None:
    client = openai.OpenAI(base_url=cached.base_url, api_key=MASTER_KEY, max_retries=0)
    messages = [{"role": "user", "content": "stream me from the cache"}]
    first = client.chat.completions.create(model="gemini-2.5-flash", messages=messages)
    with client.chat.completions.with_streaming_response.create(
        model="gemini-2.5-flash",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["x-nemo-cache"] == "HIT"
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == first.choices[0].message.content
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].model_dump()["cost"] == "0"
    assert sim.request_count == 1

    # A streamed miss is stored too, and answers the next request.
    streamed = [{"role": "user", "content": "first seen as a stream"}]
    list(client.chat.completions.create(model="gemini-2.5-flash", messages=streamed, stream=True))
    assert ask(client, streamed).headers["x-nemo-cache"] == "HIT"
    assert sim.request_count == 2
