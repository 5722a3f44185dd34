"""The request pipeline: auth → parse → required tags → route plan → router → cost →
spend record. The HTTP layer calls `chat`, nothing else.

Later stages (limits and budgets, cache) slot in here in order.
"""

from __future__ import annotations

import asyncio

from nemorouter.config import Config
from nemorouter.core.auth import Authenticator
from nemorouter.core.breaker import Breakers
from nemorouter.core.candidates import plan
from nemorouter.core.cost import CostedStream, ask_for_stream_usage, call_cost, usd
from nemorouter.core.deployments import DeploymentPool
from nemorouter.core.errors import GatewayError
from nemorouter.core.metrics import Metrics
from nemorouter.core.record import CallRecord, job_id_of
from nemorouter.core.request import parse_chat_request
from nemorouter.core.router import Routed, Router
from nemorouter.core.tags import required_tags
from nemorouter.providers import build_adapter
from nemorouter.providers.base import ProviderAdapter
from nemorouter.store.store import Store


class Inbound:
    """The request headers the pipeline reads (the HTTP layer collects them)."""

    __slots__ = ("authorization", "job_id", "request_id", "tags")

    def __init__(
        self,
        request_id: str,
        authorization: bytes | None,
        tags: bytes | None = None,
        job_id: bytes | None = None,
    ) -> None:
        self.request_id = request_id
        self.authorization = authorization
        self.tags = tags
        self.job_id = job_id


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
        self.store = Store(config.settings.database_url)
        self.metrics = Metrics()
        self.started = False

    async def start(self) -> None:
        await self.store.start()
        for adapter in self.adapters.values():
            await adapter.start()
        self.started = True

    async def close(self) -> None:
        """Stop: close provider connections, then write every spend record still waiting."""
        self.started = False
        for adapter in self.adapters.values():
            await adapter.close()
        await self.store.close()

    async def chat(self, raw: bytes, inbound: Inbound) -> Routed:
        """Answer one chat-completions body: a completion, or an open stream.

        Every authenticated request leaves one spend record, whether it succeeded, failed
        or was a stream (recorded when the stream closes)."""
        record = CallRecord(self.auth.check(inbound.authorization), inbound.request_id)
        try:
            return await self._chat(raw, inbound, record)
        except GatewayError as error:
            record.status, record.error_code = error.status, error.code
            record.attempts, record.fallbacks = error.attempts, error.fallbacks
            await self._finish(record)
            raise
        except asyncio.CancelledError:
            record.status, record.error_code = 499, "client_disconnected"
            self._finish_now(record)
            raise
        except Exception:
            record.status, record.error_code = 500, "internal_error"
            await self._finish(record)
            raise

    async def _chat(self, raw: bytes, inbound: Inbound, record: CallRecord) -> Routed:
        request = parse_chat_request(raw)
        del raw  # a large body is held once (parsed), not twice, while the provider works
        record.request = request
        record.job_id = job_id_of(request, inbound.job_id)
        required = required_tags(request, inbound.tags, self.default_tags)
        links = plan(
            self.pool,
            request.model,
            required,
            request.prompt_tokens_estimate,
            inbound.request_id,
            request.extras.get("fallbacks"),
            request.extras.get("disable_fallbacks", False),
        )
        if request.stream:
            record.stream = True
            wants_usage = ask_for_stream_usage(request)
            routed = await self.router.open_stream(request, links, inbound.request_id)
            _routed_to(record, routed)
            assert routed.stream is not None

            async def closed(stream: CostedStream) -> None:
                record.usage(stream.usage)
                record.cost = stream.cost
                if stream.failure is not None:
                    record.error_code = "stream_interrupted"
                elif not stream.ended:
                    record.error_code = "client_disconnected"
                await self._finish(record)

            routed.stream = CostedStream(
                routed.stream, routed.deployment.pricing, wants_usage, closed
            )
            return routed
        routed = await self.router.complete(request, links, inbound.request_id)
        _routed_to(record, routed)
        assert routed.response is not None
        usage = routed.response.get("usage")
        routed.cost = call_cost(routed.deployment.pricing, usage)
        if routed.cost is not None:
            usage["cost"] = usd(routed.cost)
        record.usage(usage)
        record.cost = routed.cost
        await self._finish(record)
        return routed

    async def _finish(self, record: CallRecord) -> None:
        row = record.row()
        self.metrics.observe(row)
        await self.store.writer.add(row)

    def _finish_now(self, record: CallRecord) -> None:
        """For a cancelled request: record without waiting (a cancelled task must not)."""
        row = record.row()
        self.metrics.observe(row)
        self.store.writer.add_nowait(row)


def _routed_to(record: CallRecord, routed: Routed) -> None:
    deployment = routed.deployment
    record.model = deployment.model
    record.deployment = deployment.id
    record.provider = deployment.config.provider
    record.attempts = routed.attempts
    record.fallbacks = routed.fallbacks
