"""The spend ledger never stops and no reader waits on it without a bound (issue 16, item 1):
a record the database refuses is dead-lettered while the rest is written and admin reads
answer; with the store down, admin reads and a budgeted key's first request answer 503
within a bound instead of hanging."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from nemorouter.core.record import CallRecord
from nemorouter.testing import SimulatedProvider
from tests.private_services import PrivatePostgres
from tests.services import fresh_postgres_database

from .conftest import MASTER_KEY, GatewayFactory, fresh_sqlite_url, gateway_config
from .test_spend_shutdown import _recorded_ids

ADMIN = {"Authorization": f"Bearer {MASTER_KEY}"}
POISON_ID = "poison-record"
# The bounds of core/store_read.py (2 s for the flush, 10 s for the query) plus slack.
READ_BOUND_S = 6.0


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield fresh_sqlite_url()
    else:
        with fresh_postgres_database() as url:
            yield url


def checkpoint(url: str) -> None:
    """The private server runs without synchronous commit: what was committed in its last
    ~0.6 s would not survive the immediate stop a test gives it. Make it durable first."""

    async def run() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute("CHECKPOINT")
        finally:
            await connection.close()

    asyncio.run(run())


def chat(
    url: str, request_id: str, api_key: str = MASTER_KEY, model: str = "gemini-2.5-flash"
) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {api_key}", "x-request-id": request_id},
        timeout=30,
    )


def test_a_refused_record_is_dead_lettered_and_the_ledger_goes_on(
    sim: SimulatedProvider,
    start_gateway: GatewayFactory,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One record the database refuses whatever the edge lets through (NOT NULL violated).
    original_row = CallRecord.row

    def row(record: CallRecord) -> dict[str, Any]:
        values = original_row(record)
        if values["request_id"] == POISON_ID:
            values["model_requested"] = None
        return values

    monkeypatch.setattr(CallRecord, "row", row)
    dead_letter = tmp_path / "dead.jsonl"
    gateway = start_gateway(
        gateway_config(
            sim,
            database_url=database_url,
            spend_dead_letter_path=str(dead_letter),
            spend_journal_dir=str(tmp_path),
        )
    )
    ids = [f"good-{i}" for i in range(10)]
    for request_id in ids[:5]:
        assert chat(gateway.url, request_id).status_code == 200
    assert chat(gateway.url, POISON_ID).status_code == 200  # the client got its answer
    for request_id in ids[5:]:
        assert chat(gateway.url, request_id).status_code == 200

    started = time.monotonic()
    report = httpx.get(f"{gateway.url}/admin/spend?group_by=key", headers=ADMIN, timeout=30)
    assert report.status_code == 200, report.text
    assert time.monotonic() - started < READ_BOUND_S
    assert sum(row["requests"] for row in report.json()["rows"]) == 10
    assert _recorded_ids(database_url) == set(ids)
    [letter] = [json.loads(line) for line in dead_letter.read_text().splitlines()]
    assert letter["row"]["request_id"] == POISON_ID
    assert letter["row"]["model"] == "gemini-2.5-flash" and "model_requested" in letter["error"]

    # The ledger goes on: later records are written, the dashboard reads answer.
    assert chat(gateway.url, "after").status_code == 200
    for path in ("/admin/spend?group_by=day", "/admin/events", "/admin/budgets"):
        assert httpx.get(f"{gateway.url}{path}", headers=ADMIN, timeout=30).status_code == 200
    assert "after" in _recorded_ids(database_url)


def test_with_the_store_down_reads_answer_503_within_a_bound(
    sim: SimulatedProvider, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    with PrivatePostgres() as postgres:
        gateway = start_gateway(
            gateway_config(sim, database_url=postgres.url, spend_journal_dir=str(tmp_path))
        )
        created = httpx.post(
            f"{gateway.url}/admin/keys",
            json={"name": "budgeted", "budget_usd": "10", "budget_period": "daily"},
            headers=ADMIN,
        )
        assert created.status_code == 201, created.text
        key, key_id = created.json()["key"], created.json()["id"]
        # The key is now known to the gateway (its cache), its budget not loaded yet: a model
        # it may not use is refused before the budget stage.
        assert chat(gateway.url, "warm", key, model="no-such-model").status_code == 404
        checkpoint(postgres.url)
        postgres.stop()
        # A record waits in the writer, which cannot write it.
        assert chat(gateway.url, "while-down").status_code == 200

        for path in ("/admin/spend", "/admin/jobs", "/admin/budgets", f"/admin/keys/{key_id}"):
            started = time.monotonic()
            answer = httpx.get(f"{gateway.url}{path}", headers=ADMIN, timeout=30)
            elapsed = time.monotonic() - started
            assert answer.status_code == 503, (path, answer.status_code, answer.text)
            assert answer.json()["error"]["code"] == "service_unavailable"
            assert answer.headers["retry-after"]
            assert elapsed < READ_BOUND_S, (path, elapsed)

        started = time.monotonic()
        refused = chat(gateway.url, "budgeted-while-down", key)
        assert refused.status_code == 503, refused.text  # budgets fail closed
        assert refused.json()["error"]["code"] == "service_unavailable"
        assert time.monotonic() - started < READ_BOUND_S

        postgres.start()  # the store is back: the waiting record is written, reads answer
        deadline = time.monotonic() + 30
        while True:
            answer = httpx.get(f"{gateway.url}/admin/spend", headers=ADMIN, timeout=30)
            if answer.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert answer.status_code == 200, answer.text
        assert chat(gateway.url, "budgeted-after", key).status_code == 200
        gateway.stop()
