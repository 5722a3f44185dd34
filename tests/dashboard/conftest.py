"""Dashboard tests: a real gateway (as in tests/integration) and the store fixtures
(SQLite and the real PostgreSQL) for the queries behind the pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from nemorouter.config import parse_config
from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider
from tests.integration.conftest import MASTER_KEY, gateway_config
from tests.store.conftest import database_url, engine  # noqa: F401  (fixtures)

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture
def dash_gateway(sim: SimulatedProvider) -> Iterator[BackgroundGateway]:
    """A fresh gateway (and SQLite store) per test: the numbers start from zero."""
    with BackgroundGateway(parse_config(gateway_config(sim), env={})) as gateway:
        yield gateway


def admin_get(gateway: BackgroundGateway, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{gateway.url}{path}", params=params, headers=ADMIN, timeout=30)
