"""In-memory stages for pipeline unit tests: a scripted provider, a token → caller
authenticator and a spend writer that keeps its rows; everything else is the real stage
over its memory backend (no HTTP server, no database, no Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from nemorouter.config import parse_config
from nemorouter.core.auth import Caller
from nemorouter.core.cache_stage import CacheStage
from nemorouter.core.deployments import DeploymentPool
from nemorouter.core.limits import KeyLimits
from nemorouter.core.metrics import Metrics
from nemorouter.core.pipeline import Inbound, Pipeline
from nemorouter.core.router import Router
from nemorouter.state.breaker_memory import Breakers
from nemorouter.state.budget_memory import MemoryBudgets
from nemorouter.state.budget_memory import Reservation as BudgetReservation
from nemorouter.state.cache_memory import MemoryCache
from nemorouter.state.memory import MemoryWindows
from nemorouter.state.types import Reservation
from nemorouter.types.errors import GatewayError
from nemorouter.types.keys import KeyRecord
from nemorouter.types.target import Target
from nemorouter.types.upstream import UpstreamFailure

USAGE = {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}


def completion(text: str = "ok") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": dict(USAGE),
    }


class ScriptedProvider:
    """Answers per deployment id from a script: a dict, or an UpstreamFailure to raise."""

    name = "fake"
    inlines_images = False

    def __init__(self) -> None:
        self.script: dict[str, list[Any]] = {}
        self.calls: list[str] = []

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def prepare(self, target: Target, body: dict[str, Any], fetched: Any, stream: bool) -> Any:
        return target

    def _next(self, target: Target) -> Any:
        self.calls.append(target.deployment_id)
        queue = self.script.get(target.deployment_id, [])
        outcome = queue.pop(0) if queue else completion()
        if isinstance(outcome, UpstreamFailure):
            raise outcome
        return outcome

    async def complete(self, target: Target) -> dict[str, Any]:
        await asyncio.sleep(0)
        return self._next(target)

    async def open_stream(self, target: Target) -> Any:
        self._next(target)
        return ChunkStream()


class ChunkStream:
    """Two content chunks, then the usage-only chunk."""

    def __init__(self) -> None:
        self.closed = False

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[dict[str, Any]]:
        for text in ("o", "k"):
            yield {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}  # fmt: skip
        yield {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [], "usage": dict(USAGE)}  # fmt: skip

    async def aclose(self) -> None:
        self.closed = True


class SpyWindows(MemoryWindows):
    """Memory rate windows that note each settle: (reserved tokens, actual tokens)."""

    def __init__(self) -> None:
        super().__init__()
        self.settled: list[tuple[int, int]] = []

    async def settle(self, reservation: Reservation, actual_tokens: int) -> None:
        self.settled.append((reservation.tokens, actual_tokens))
        await super().settle(reservation, actual_tokens)


class SpyBudgets(MemoryBudgets):
    """Memory budgets that note each settle: (reserved picodollars, actual picodollars)."""

    def __init__(self, load_spent: Any) -> None:
        super().__init__(load_spent)
        self.settled: list[tuple[int, int]] = []

    async def settle(self, reservation: BudgetReservation | None, actual_pico: int) -> None:
        if reservation is not None and not reservation.settled:
            self.settled.append((reservation.pico, actual_pico))
        await super().settle(reservation, actual_pico)


class TokenAuth:
    """Bearer token → caller; anything else is the 401 the real authenticator answers."""

    def __init__(self, callers: dict[bytes, Caller]) -> None:
        self.callers = callers

    async def resolve(self, authorization: bytes | None) -> Caller:
        caller = self.callers.get(authorization or b"")
        if caller is None:
            raise GatewayError(401, "invalid_api_key", "Invalid API key.")
        return caller


class KeptRows:
    """The spend writer: keeps the rows it is given."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    async def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)

    def add_nowait(self, row: dict[str, Any]) -> None:
        self.rows.append(row)


def key(**fields: Any) -> Caller:
    record = KeyRecord(
        id=fields.pop("id", "k1"), name="k", key_hash="h", key_prefix="sk-nemo-x",
        created_at=datetime(2026, 1, 1), **fields,
    )  # fmt: skip
    return Caller(record)


class Harness:
    """A pipeline over real stages with memory backends, and the fakes to look at."""

    def __init__(self, callers: dict[bytes, Caller] | None = None, spent: int = 0) -> None:
        config = parse_config(
            {
                "settings": {"master_key": "sk-test-master-key", "retries": 0},
                "providers": {
                    "p": {"type": "openai-compatible", "base_url": "http://127.0.0.1:9/v1"}
                },
                "deployments": [
                    {"id": "pro-a", "model": "gemini-2.5-pro", "provider": "p", "tags": ["eu"]},
                    {"id": "flash", "model": "gemini-2.5-flash", "provider": "p"},
                ],
                "groups": {"chain": ["gemini-2.5-pro", "gemini-2.5-flash"]},
            },
            env={},
        )
        self.provider = ScriptedProvider()
        self.pool = DeploymentPool(config, {"p": self.provider})  # type: ignore[dict-item]
        self.windows = SpyWindows()
        self.spent = spent

        async def load_spent(column: str, subject_id: str, since: datetime | None) -> int:
            return self.spent

        self.budgets = SpyBudgets(load_spent)
        self.cache = MemoryCache()
        self.rows = KeptRows()
        self.pipeline = Pipeline(
            auth=TokenAuth(callers if callers is not None else {b"Bearer sk-k1": key()}),  # type: ignore[arg-type]
            pool=self.pool,
            router=Router(0, Breakers(100, 30.0)),
            limits=KeyLimits(self.windows),
            budgets=self.budgets,
            cache=CacheStage(config.settings.cache, self.cache),
            writer=self.rows,  # type: ignore[arg-type]
            metrics=Metrics(),
        )

    async def chat(self, body: bytes, token: bytes = b"Bearer sk-k1", **headers: bytes) -> Any:
        return await self.pipeline.chat(body, Inbound("req-1", token, **headers))
