"""Virtual keys and teams through a real gateway, on SQLite and PostgreSQL: lifecycle,
refusals with the §2.1 codes, budgets under concurrency, secrets never stored or shown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openai
import pytest

from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider
from tests.services import fresh_postgres_database

from .conftest import MASTER_KEY, GatewayFactory, gateway_config

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
HI = [{"role": "user", "content": "hello"}]


class Env:
    def __init__(self, gateway: BackgroundGateway, database_url: str) -> None:
        self.gateway = gateway
        self.database_url = database_url

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.request(
            method, f"{self.gateway.url}{path}", json=body, headers=ADMIN, timeout=30
        )

    def client(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.gateway.base_url, api_key=key, max_retries=0)

    def new_key(self, **fields: Any) -> dict[str, Any]:
        response = self.admin("POST", "/admin/keys", {"name": "test", **fields})
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture(params=["sqlite", "postgresql"])
def env(
    request: pytest.FixtureRequest,
    sim: SimulatedProvider,
    start_gateway: GatewayFactory,
    tmp_path: Path,
) -> Iterator[Env]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/keys.db"
        yield Env(start_gateway(gateway_config(sim, database_url=url)), url)
        return
    with fresh_postgres_database() as url:
        gateway = start_gateway(gateway_config(sim, database_url=url))
        yield Env(gateway, url)
        gateway.stop()


def test_key_lifecycle(env: Env, sim: SimulatedProvider) -> None:
    team = env.admin("POST", "/admin/teams", {"name": "ocr", "budget_usd": "50", "budget_period": "monthly"})  # fmt: skip
    assert team.status_code == 201
    team_id = team.json()["id"]
    assert team.json()["budget_usd"] == "50"
    created = env.new_key(name="batch", team_id=team_id, models=["gemini-2.5-flash"], rpm=100)
    secret = created["key"]
    assert secret.startswith("sk-nemo-") and len(secret) > 40
    assert created["key_prefix"] == secret[:12]
    assert created["team_id"] == team_id and created["models"] == ["gemini-2.5-flash"]

    raw = env.client(secret).chat.completions.with_raw_response.create(
        model="gemini-2.5-flash", messages=HI, extra_body={"metadata": {"job_id": "k-job"}}
    )
    cost = raw.headers["x-nemo-response-cost"]
    by_key = env.admin("GET", "/admin/spend?group_by=key&job_id=k-job").json()["rows"]
    assert by_key == [{**by_key[0], "group": created["id"], "requests": 1, "cost_usd": cost}]
    by_team = env.admin("GET", "/admin/spend?group_by=team&job_id=k-job").json()["rows"]
    assert by_team[0]["group"] == team_id
    shown = env.admin("GET", f"/admin/keys/{created['id']}").json()
    assert shown["spend"]["usd"] == cost
    assert "key" not in shown and "key_hash" not in shown

    with pytest.raises(openai.PermissionDeniedError) as denied:
        env.client(secret).chat.completions.create(model="gemini-2.5-pro", messages=HI)
    assert denied.value.code == "model_not_allowed"

    patched = env.admin("PATCH", f"/admin/keys/{created['id']}", {"models": ["document-vision"]})
    assert patched.status_code == 200 and patched.json()["models"] == ["document-vision"]
    answer = env.client(secret).chat.completions.with_raw_response.create(model="gemini-2.5-pro", messages=HI)  # fmt: skip
    assert answer.headers["x-nemo-model"] == "gemini-2.5-pro"  # the group stands for its models

    listed = env.admin("GET", f"/admin/keys?team_id={team_id}").json()["keys"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert env.admin("GET", "/admin/teams").json()["teams"][0]["id"] == team_id

    before = sim.request_count
    assert env.admin("DELETE", f"/admin/keys/{created['id']}").json()["revoked_at"] is not None
    with pytest.raises(openai.AuthenticationError) as revoked:
        env.client(secret).chat.completions.create(model="gemini-2.5-flash", messages=HI)
    assert revoked.value.code == "invalid_api_key" and "revoked" in str(revoked.value)
    assert sim.request_count == before


def test_expired_unknown_and_malformed_keys_are_refused(env: Env) -> None:
    created = env.new_key(expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    client = env.client(created["key"])
    client.chat.completions.create(model="gemini-2.5-flash", messages=HI)
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    assert (
        env.admin("PATCH", f"/admin/keys/{created['id']}", {"expires_at": past}).status_code == 200
    )
    with pytest.raises(openai.AuthenticationError) as expired:
        client.chat.completions.create(model="gemini-2.5-flash", messages=HI)
    assert "expired" in str(expired.value)
    for bad in ("sk-nemo-" + "x" * 43, "not-a-key", created["key"] + "x"):
        with pytest.raises(openai.AuthenticationError):
            env.client(bad).chat.completions.create(model="gemini-2.5-flash", messages=HI)
    # The admin API is for the master key only.
    refused = httpx.get(f"{env.gateway.url}/admin/keys", headers={"Authorization": f"Bearer {created['key']}"})  # fmt: skip
    assert refused.status_code == 401


def test_admin_input_is_validated(env: Env) -> None:
    cases = [
        ({"name": ""}, "name"),
        ({"name": "a", "models": ["no-such-model"]}, "models"),
        ({"name": "a", "team_id": "team_missing"}, "team_id"),
        ({"name": "a", "budget_period": "daily"}, "budget_period"),
        ({"name": "a", "budget_usd": "-1"}, "budget_usd"),
        ({"name": "a", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "a", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        response = env.admin("POST", "/admin/keys", body)
        assert response.status_code == 400, (body, response.text)
        assert field in response.text
    assert env.admin("GET", "/admin/keys/key_missing").status_code == 404
    assert env.admin("DELETE", "/admin/keys/key_missing").json()["error"]["code"] == "key_not_found"


def test_key_default_tags_replace_the_settings_default(env: Env) -> None:
    key = env.new_key(default_tags=["embedding"])["key"]
    with pytest.raises(openai.BadRequestError) as mismatch:
        env.client(key).chat.completions.create(model="auto", messages=HI)
    assert mismatch.value.code == "tag_mismatch"
    # A request's own tags override the key's defaults.
    env.client(key).chat.completions.create(
        model="auto", messages=HI, extra_body={"tags": ["vision"]}
    )


def test_budget_holds_under_concurrency(env: Env, sim: SimulatedProvider) -> None:
    sim.latency_ms = 30
    budget = Decimal("0.002")
    created = env.new_key(budget_usd=str(budget), budget_period="daily")
    client = env.client(created["key"])
    max_tokens = 200
    # Worst case of one call: ~2 prompt tokens at $0.30/M + 200 at $2.50/M (gemini-2.5-flash).
    worst = (Decimal(2) * Decimal("0.30") + max_tokens * Decimal("2.50")) / 1_000_000

    def call(_: int) -> str:
        try:
            client.chat.completions.create(
                model="gemini-2.5-flash", messages=HI, max_tokens=max_tokens
            )
        except openai.APIStatusError as exc:
            return str(exc.code)
        return "ok"

    outcomes: list[str] = []
    with ThreadPoolExecutor(50) as pool:
        for _ in range(6):  # waves of 50 concurrent calls until the budget is gone
            outcomes += pool.map(call, range(50))
    assert "budget_exceeded" in outcomes
    assert set(outcomes) <= {"ok", "budget_exceeded"}
    # Refusals under concurrency can come from reservations alone; one call at a time
    # is admitted exactly while spent < budget, so finish the budget that way.
    for _ in range(100):
        if call(0) == "budget_exceeded":
            break
    spent = Decimal(env.admin("GET", f"/admin/keys/{created['id']}").json()["spend"]["usd"])
    assert budget <= spent <= budget + worst, (spent, outcomes.count("ok"))

    before = sim.request_count
    with pytest.raises(openai.APIStatusError) as exhausted:
        client.chat.completions.create(model="gemini-2.5-flash", messages=HI)
    assert exhausted.value.status_code == 402 and exhausted.value.code == "budget_exceeded"
    assert sim.request_count == before  # refused without calling any provider


def test_team_budget_binds_every_key_of_the_team(env: Env) -> None:
    team = env.admin("POST", "/admin/teams", {"name": "tiny", "budget_usd": "0.0000001"}).json()
    first = env.client(env.new_key(team_id=team["id"])["key"])
    second = env.client(env.new_key(team_id=team["id"])["key"])
    first.chat.completions.create(model="gemini-2.5-flash", messages=HI)  # spends the budget
    with pytest.raises(openai.APIStatusError) as spent:
        second.chat.completions.create(model="gemini-2.5-flash", messages=HI)
    assert spent.value.status_code == 402 and "team 'tiny'" in str(spent.value)


def test_no_secret_in_the_database_logs_or_admin_responses(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = env.new_key(name="secretive")
    secret = created["key"]
    client = env.client(secret)
    client.chat.completions.create(model="gemini-2.5-flash", messages=HI)
    with pytest.raises(openai.PermissionDeniedError):
        env.admin("PATCH", f"/admin/keys/{created['id']}", {"models": ["gemini-2.5-pro"]})
        client.chat.completions.create(model="gemini-2.5-flash", messages=HI)
    env.admin("DELETE", f"/admin/keys/{created['id']}")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gemini-2.5-flash", messages=HI)
    shown = [
        env.admin("GET", "/admin/keys").text,
        env.admin("GET", f"/admin/keys/{created['id']}").text,
        env.admin("GET", "/admin/spend?group_by=key").text,
        httpx.get(f"{env.gateway.url}/metrics").text,
    ]
    assert all(secret not in text for text in shown)
    assert secret not in caplog.text
    assert secret not in database_dump(env.database_url)


def database_dump(database_url: str) -> str:
    """Every byte the database holds for the project (SQLite files, or every row in PG)."""
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        return "".join(p.read_bytes().decode("latin-1") for p in files)

    async def dump() -> str:
        connection = await asyncpg.connect(database_url)
        try:
            out = []
            for table in ("keys", "teams", "spend"):
                out += [str(tuple(row)) for row in await connection.fetch(f"SELECT * FROM {table}")]
            return "\n".join(out)
        finally:
            await connection.close()

    return asyncio.run(dump())
