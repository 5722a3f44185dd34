"""Translation comes before the quota: a request an adapter cannot translate (or encode) is
the client's 400 naming the field, with no quota reserved, no call made and no breaker
verdict; never a cancellation that leaves a reservation counted."""

from __future__ import annotations

from typing import Any

import pytest

from nemorouter.config import parse_config
from nemorouter.core import route_run
from nemorouter.core.candidates import plan
from nemorouter.core.deployments import DeploymentPool
from nemorouter.core.router import Router
from nemorouter.providers import build_adapter
from nemorouter.state import MemoryWindows, QuotaGate
from nemorouter.state.breaker_memory import Breakers
from nemorouter.types.errors import GatewayError, invalid_request
from nemorouter.types.target import Target
from nemorouter.types.upstream import FailureKind, UpstreamFailure

from .test_router_quota import Setup, fill, make_request

GS_IMAGE = {"type": "image_url", "image_url": {"url": "gs://bucket/page.png"}}


def refuse(*deployment_ids: str) -> Any:
    """A `prepare` that refuses the request for these deployments, as a translating
    adapter refuses a field its provider cannot take."""

    def prepare(target: Target, body: dict[str, Any], fetched: Any, stream: bool) -> Any:
        if target.deployment_id in deployment_ids:
            raise invalid_request("'response_format' cannot be sent", param="response_format")
        return target, body

    return prepare


@pytest.mark.parametrize("stream", [False, True])
async def test_claude_refusing_a_field_reserves_nothing(stream: bool) -> None:
    """The real Claude adapter: a gs:// image is a 400 before the deployment's quota is
    touched (no server is needed: nothing is sent)."""
    config = parse_config(
        {
            "settings": {"master_key": "sk-test-master-key"},
            "providers": {
                "c": {"type": "anthropic", "api_key": "sk-ant-x", "base_url": "http://x:9"}
            },
            "deployments": [
                {"id": "haiku", "model": "claude-haiku-4-5", "provider": "c", "rpm": 1}
            ],
        },
        env={},
    )
    adapter = build_adapter("c", config.providers["c"], config.settings)
    pool = DeploymentPool(config, {"c": adapter})
    windows = MemoryWindows(window_s=60.0)
    gate = QuotaGate(windows, {d.id: (d.rpm, d.tpm) for d in config.deployments})
    breakers = Breakers(1, 30.0)
    router = Router(0, breakers, gate, queue_timeout_s=0.05)
    content = [{"type": "text", "text": "Read"}, GS_IMAGE]
    request = make_request("claude-haiku-4-5", content, stream=stream)  # type: ignore[arg-type]
    links = plan(pool, "claude-haiku-4-5", frozenset(), 0, "r")
    route = router.open_stream if stream else router.complete
    with pytest.raises(GatewayError) as caught:
        await route(request, links, "r")
    assert (caught.value.status, caught.value.code) == (400, "invalid_request")
    assert caught.value.param == "messages" and "gs://" in caught.value.message
    # the one request a minute is still free: nothing reserved it
    decision = await gate.try_acquire("haiku", 10)
    assert decision.allowed, "a failed translation left the quota reserved"
    assert pool.by_model["claude-haiku-4-5"][0].in_flight == 0
    assert breakers.available("haiku")


async def test_translation_error_on_the_picked_deployment_reserves_nothing() -> None:
    s = Setup(pro_a={"rpm": 2, "tpm": 10_000}, pro_b={"rpm": 2, "tpm": 10_000})
    s.adapter.prepare = refuse("pro-a", "pro-b")  # type: ignore[method-assign]
    with pytest.raises(GatewayError) as caught:
        await s.complete("gemini-2.5-pro")
    assert caught.value.status == 400 and caught.value.param == "response_format"
    assert await s.used("pro-a") == (0, 0)
    assert await s.used("pro-b") == (0, 0)
    assert s.called() == []


async def test_translation_error_on_the_sibling_with_room_gives_its_reservation_back() -> None:
    """pro-a (picked) has no room, pro-b has: the reservation moves to pro-b, whose adapter
    then refuses the request; pro-b's reservation goes back."""
    s = Setup(pro_a={"rpm": 1, "tpm": 10_000}, pro_b={"rpm": 1, "tpm": 10_000})
    await fill(s, "pro-a")
    s.adapter.prepare = refuse("pro-b")  # type: ignore[method-assign]
    for _ in range(2):  # the pick rotates: whichever is picked first, pro-b refuses
        with pytest.raises(GatewayError) as caught:
            await s.complete("gemini-2.5-pro")
        assert caught.value.status == 400
        assert await s.used("pro-b") == (0, 0)
        assert await s.used("pro-a") == (1, 0)  # only the fill
    assert s.called() == []


async def test_encoding_error_when_sending_gives_the_reservation_back() -> None:
    """An adapter that fails to encode its body as it sends (a GatewayError from the call
    itself) has sent nothing: the reservation goes back, no breaker verdict."""
    s = Setup(flash={"rpm": 1, "tpm": 10_000})

    async def complete(upstream: Any) -> Any:
        raise invalid_request("The request cannot be sent to Gemini: too deep.")

    s.adapter.complete = complete  # type: ignore[method-assign]
    with pytest.raises(GatewayError) as caught:
        await s.complete("gemini-2.5-flash")
    assert caught.value.status == 400
    assert await s.used("flash") == (0, 0)
    assert s.pool.by_model["gemini-2.5-flash"][0].in_flight == 0
    assert s.router.breakers.available("flash")


@pytest.mark.parametrize("inlines", [False, True])
async def test_remote_images_are_fetched_once_and_only_for_providers_that_inline_them(
    monkeypatch: pytest.MonkeyPatch, inlines: bool
) -> None:
    """A chain whose first link fails its call and retry: the images are fetched once for
    the whole request when the adapters take images inline, never when they fetch URLs
    themselves (OpenAI)."""
    fetched: list[list[str]] = []
    seen: list[Any] = []

    async def fetch(body: dict[str, Any]) -> dict[str, Any]:
        fetched.append([p["image_url"]["url"] for p in body["messages"][0]["content"][1:]])
        return {"https://img.example/p.png": "inline bytes"}

    monkeypatch.setattr(route_run, "fetch_remote_images", fetch)
    s = Setup(retries=1)
    s.adapter.inlines_images = inlines  # type: ignore[attr-defined]

    def prepare(target: Target, body: dict[str, Any], media: Any, stream: bool) -> Any:
        seen.append(dict(media))
        return target, body

    s.adapter.prepare = prepare  # type: ignore[method-assign]
    for _ in range(2):
        s.adapter.failures.append(UpstreamFailure(FailureKind.SERVER_ERROR, "boom", status=503))
    content = [
        {"type": "text", "text": "Read"},
        {"type": "image_url", "image_url": {"url": "https://img.example/p.png"}},
    ]
    routed = await s.complete("chain", content)  # type: ignore[arg-type]
    assert routed.attempts == 3 and routed.fallbacks == 1
    if inlines:
        assert fetched == [["https://img.example/p.png"]]
        assert seen == [{"https://img.example/p.png": "inline bytes"}] * 3
    else:
        assert fetched == []
        assert seen == [{}] * 3
