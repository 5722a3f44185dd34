"""Admin input that cannot be stored is a 400 naming the field, never a 500, on SQLite and
PostgreSQL: limits beyond Integer, budgets beyond BigInteger picodollars, dates past the
calendar's end, NUL in names, ids and query parameters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider
from tests.services import fresh_postgres_database

from .conftest import MASTER_KEY, GatewayFactory, gateway_config

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(params=["sqlite", "postgresql"])
def gateway(
    request: pytest.FixtureRequest,
    sim: SimulatedProvider,
    start_gateway: GatewayFactory,
    tmp_path: Path,
) -> Iterator[BackgroundGateway]:
    if request.param == "sqlite":
        yield start_gateway(gateway_config(sim, database_url=f"sqlite:///{tmp_path}/a.db"))
        return
    with fresh_postgres_database() as url:
        gateway = start_gateway(gateway_config(sim, database_url=url))
        yield gateway
        gateway.stop()


def call(gateway: BackgroundGateway, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, f"{gateway.url}{path}", json=body, headers=ADMIN, timeout=30)


BAD_BODIES = [
    ({"name": "a", "rpm": 2**63}, "rpm"),
    ({"name": "a", "tpm": 2**31}, "tpm"),
    ({"name": "a", "rpm": 10**30}, "rpm"),
    ({"name": "a", "budget_usd": "1e7"}, "budget_usd"),
    ({"name": "a", "budget_usd": 1e7}, "budget_usd"),
    ({"name": "a", "budget_usd": "1e999999"}, "budget_usd"),
    ({"name": "a", "expires_at": "9999-12-31T23:00:00-12:00"}, "expires_at"),
    ({"name": "a", "expires_at": "0001-01-01T00:00:00+14:00"}, "expires_at"),
    ({"name": "a\u0000b"}, "name"),
    ({"name": "a", "team_id": "t\u0000"}, "team_id"),
    ({"name": "a", "team_id": "t" * 41}, "team_id"),
    ({"name": "a", "models": ["gemini-2.5-flash\u0000"]}, "models"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_key_fields_that_cannot_be_stored_are_refused(
    gateway: BackgroundGateway, body: dict[str, Any], field: str
) -> None:
    for method, path in (("POST", "/admin/keys"), ("PATCH", None)):
        if path is None:
            path = f"/admin/keys/{call(gateway, 'POST', '/admin/keys', {'name': 'k'}).json()['id']}"
            body = {k: v for k, v in body.items() if k != "name"} or body
        response = call(gateway, method, path, body)
        assert response.status_code == 400, (method, body, response.text)
        assert response.json()["error"]["param"] == field, response.text


def test_team_fields_that_cannot_be_stored_are_refused(gateway: BackgroundGateway) -> None:
    for body, field in [
        ({"name": "t", "rpm": 2**63}, "rpm"),
        ({"name": "t", "budget_usd": "10000000"}, "budget_usd"),
        ({"name": "t\u0000"}, "name"),
    ]:
        response = call(gateway, "POST", "/admin/teams", body)
        assert response.status_code == 400 and response.json()["error"]["param"] == field


def test_the_largest_storable_values_are_stored(gateway: BackgroundGateway) -> None:
    body = {
        "name": "n" * 200,
        "rpm": 2**31 - 1,
        "budget_usd": "9223372.036854775807",
        "expires_at": "9999-12-31T23:59:59Z",
    }
    created = call(gateway, "POST", "/admin/keys", body)
    assert created.status_code == 201, created.text
    shown = call(gateway, "GET", f"/admin/keys/{created.json()['id']}").json()
    assert shown["budget_usd"] == "9223372.036854775807" and shown["rpm"] == 2**31 - 1


@pytest.mark.parametrize(
    "path",
    [
        "/admin/spend?group_by=day&end=9999-12-31",
        "/admin/spend/timeline?end=9999-12-31",
        "/admin/spend?start=0001-01-01",
    ],
)
def test_the_calendar_s_ends_are_valid_query_bounds(gateway: BackgroundGateway, path: str) -> None:
    assert call(gateway, "GET", path).status_code == 200


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/admin/spend?end=9999-12-31T23:00:00-12:00", "end"),
        ("/admin/spend?start=0001-01-01T00:00:00%2B14:00", "start"),
        ("/admin/spend?job_id=a%00b", "job_id"),
        ("/admin/spend?model=" + "m" * 201, "model"),
        ("/admin/spend/timeline?job_id=a%00", "job_id"),
        ("/admin/events?job_id=a%00", "job_id"),
        ("/admin/jobs/a%00b", "job_id"),
        ("/admin/keys?team_id=t%00", "team_id"),
        ("/admin/keys/key%00", "key_id"),
        ("/admin/jobs?limit=" + "9" * 5000, "limit"),
    ],
)
def test_query_values_that_cannot_be_looked_up_are_refused(
    gateway: BackgroundGateway, path: str, field: str
) -> None:
    response = call(gateway, "GET", path)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == field
