"""The request pipeline: auth → parse → required tags → route plan → router → cost.
The HTTP layer calls `chat`, nothing else.

Later stages (limits and budgets, cache, spend record) slot in here in order.
"""

from __future__ import annotations

from nemorouter.config import Config
from nemorouter.core.auth import Authenticator
from nemorouter.core.breaker import Breakers
from nemorouter.core.candidates import plan
from nemorouter.core.cost import CostedStream, ask_for_stream_usage, call_cost, usd
from nemorouter.core.deployments import DeploymentPool
from nemorouter.core.request import parse_chat_request
from nemorouter.core.router import Routed, Router
from nemorouter.core.tags import required_tags
from nemorouter.providers import build_adapter
from nemorouter.providers.base import ProviderAdapter


class Pipeline:
    """Everything a request passes through, built once from the config."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.auth = Authenticator(config.settings.master_key)
        used = {d.provider for d in config.deployments}
        self.adapters: dict[str, ProviderAdapter] = {
            name: build_adapter(name, provider, config.settings)
            for name, provider in config.providers.items()
            if name in used
        }
        self.pool = DeploymentPool(config, self.adapters)
        breaker = config.settings.breaker
        self.router = Router(
            config.settings.retries, Breakers(breaker.consecutive_failures, breaker.cooldown_s)
        )
        self.default_tags = frozenset(config.settings.default_tags)
        self.started = False

    async def start(self) -> None:
        for adapter in self.adapters.values():
            await adapter.start()
        self.started = True

    async def close(self) -> None:
        self.started = False
        for adapter in self.adapters.values():
            await adapter.close()

    async def chat(
        self, raw: bytes, authorization: bytes | None, tags_header: bytes | None, request_id: str
    ) -> Routed:
        """Answer one chat-completions body: a completion, or an open stream."""
        self.auth.check(authorization)
        request = parse_chat_request(raw)
        del raw  # a large body is held once (parsed), not twice, while the provider works
        required = required_tags(request, tags_header, self.default_tags)
        links = plan(
            self.pool,
            request.model,
            required,
            request.prompt_tokens_estimate,
            request_id,
            request.extras.get("fallbacks"),
            request.extras.get("disable_fallbacks", False),
        )
        if request.stream:
            wants_usage = ask_for_stream_usage(request)
            routed = await self.router.open_stream(request, links, request_id)
            assert routed.stream is not None
            routed.stream = CostedStream(routed.stream, routed.deployment.pricing, wants_usage)
            return routed
        routed = await self.router.complete(request, links, request_id)
        assert routed.response is not None
        usage = routed.response.get("usage")
        routed.cost = call_cost(routed.deployment.pricing, usage)
        if routed.cost is not None:
            usage["cost"] = usd(routed.cost)
        return routed
