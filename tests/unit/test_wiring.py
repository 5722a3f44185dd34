"""The composition root: the memory/Redis choice made once, one Redis client for all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from nemorouter.config import parse_config
from nemorouter.state import redis_client as redis_client_module
from nemorouter.state.breaker_memory import Breakers
from nemorouter.state.breaker_redis import RedisBreakers
from nemorouter.state.budget_memory import MemoryBudgets
from nemorouter.state.budget_redis import RedisBudgets
from nemorouter.state.cache_memory import MemoryCache
from nemorouter.state.cache_redis import RedisCache
from nemorouter.state.memory import MemoryWindows
from nemorouter.state.redis_windows import RedisWindows
from nemorouter.wiring import Services


def config(tmp_path: Path, **settings: Any) -> Any:
    return parse_config(
        {
            "settings": {
                "master_key": "sk-test-master-key",
                "database_url": f"sqlite:///{tmp_path / 'spend.db'}",
                **settings,
            },
            "providers": {"p": {"type": "openai-compatible", "base_url": "http://127.0.0.1:9/v1"}},
            "deployments": [{"id": "flash", "model": "gemini-2.5-flash", "provider": "p"}],
        },
        env={},
    )


def test_without_redis_every_concern_keeps_its_state_in_memory(tmp_path: Path) -> None:
    services = Services(config(tmp_path))
    assert services.redis is None and services.key_events is None
    assert isinstance(services.state.windows, MemoryWindows)
    assert isinstance(services.budgets, MemoryBudgets)
    assert isinstance(services.breakers, Breakers)
    assert isinstance(services.pipeline.cache.backend, MemoryCache)
    assert services.pipeline.pool is services.pool and services.pipeline.auth is services.auth


def test_with_redis_one_client_serves_every_shared_state_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Redis] = []
    real = redis_client_module.Redis.from_url

    def counted(url: str, **options: Any) -> Redis:
        made.append(real(url, **options))  # connects lazily: no server needed
        return made[-1]

    monkeypatch.setattr(redis_client_module.Redis, "from_url", counted)
    services = Services(config(tmp_path, redis_url="redis://127.0.0.1:1/0"))
    assert made == [services.redis]  # one client (one pool) per worker
    clients = {
        id(services.state.windows._client),  # which client each backend holds
        id(services.state.quotas._windows._client),
        id(services.budgets._client),
        id(services.breakers._client),
        id(services.pipeline.cache.backend._client),
        id(services.key_events._client),
    }
    assert clients == {id(services.redis)}
    assert isinstance(services.state.windows, RedisWindows)
    assert isinstance(services.budgets, RedisBudgets)
    assert isinstance(services.breakers, RedisBreakers)
    assert isinstance(services.pipeline.cache.backend, RedisCache)
