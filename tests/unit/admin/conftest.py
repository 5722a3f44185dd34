"""The admin services over an in-memory SQLite store, with no HTTP in between."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from nemorouter.store.engine import create_engine, upgrade
from nemorouter.store.keys_repo import KeysRepo


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = create_engine("sqlite://")  # one in-memory database (StaticPool)
    await upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def repo(engine: AsyncEngine) -> KeysRepo:
    return KeysRepo(engine)
