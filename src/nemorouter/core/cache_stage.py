"""The response cache as a pipeline stage: which requests may read or write it, lookups,
stores, single flight, and replaying a cached answer as a stream."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from nemorouter.config_sections import CacheSettings
from nemorouter.core.auth import Caller
from nemorouter.core.cache_entry import (
    CachedCompletion,
    decode_entry,
    encode_entry,
    new_entry,
)
from nemorouter.core.cache_key import cache_key, cache_scope
from nemorouter.state.cache import ResponseCache
from nemorouter.state.single_flight import SingleFlight
from nemorouter.types.request import ChatRequest

HIT, MISS, SKIP = "HIT", "MISS", "SKIP"


class CachePlan:
    """What the cache may do for one request."""

    __slots__ = ("key", "read", "write")

    def __init__(self, key: str, read: bool, write: bool) -> None:
        self.key = key
        self.read = read
        self.write = write

    @property
    def shares_flights(self) -> bool:
        # Only a request that would read and write the cache may take another's answer.
        return self.read and self.write


class CacheStage:
    def __init__(self, settings: CacheSettings, backend: ResponseCache) -> None:
        self.enabled = settings.enabled
        self.ttl_s = float(settings.ttl_s)
        self.scope = settings.scope
        self.backend = backend
        self.flights: SingleFlight[tuple[Any, bytes | None]] = SingleFlight()

    def plan(self, request: ChatRequest, caller: Caller) -> CachePlan | None:
        """None: the cache is skipped for this request (x-nemo-cache: SKIP)."""
        options = request.options  # checked at the edge, even when the cache is off
        read, write = options.cache_read, options.cache_write
        if not self.enabled or not (read or write):
            return None
        scope = cache_scope(self.scope, caller.key_id, caller.team_id)
        return CachePlan(cache_key(request.body, request.model, scope), read, write)

    async def lookup(self, plan: CachePlan) -> CachedCompletion | None:
        if not plan.read:
            return None
        data = await self.backend.get(plan.key)
        return None if data is None else decode_entry(data)

    async def store(
        self,
        plan: CachePlan,
        response: dict[str, Any],
        cost: Decimal | None,
        model: str,
        deployment: str,
    ) -> bytes | None:
        """Store a successful completion (not one cut short or refused); return the entry."""
        if not plan.write or not _cacheable(response):
            return None
        encoded = encode_entry(new_entry(response, cost, model, deployment))
        await self.backend.set(plan.key, encoded, self.ttl_s)
        return encoded

    async def aclose(self) -> None:
        await self.backend.aclose()


def _cacheable(response: dict[str, Any]) -> bool:
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    # A truncated or filtered answer is not the answer to cache.
    return all(
        isinstance(c, dict) and c.get("finish_reason") in ("stop", "tool_calls") for c in choices
    )


def hit_response(entry: CachedCompletion) -> dict[str, Any]:
    """The cached completion as this request's answer: costs nothing, used no tokens."""
    response = copy.deepcopy(entry.response)
    usage = response.get("usage")
    if isinstance(usage, dict):
        usage["cost"] = "0"
    return response
