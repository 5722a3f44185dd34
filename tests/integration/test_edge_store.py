"""What the edge accepts fits the spend row, on SQLite and PostgreSQL: a long x-request-id,
NUL in the model, the job id or metadata, out-of-range numbers — each request is answered
(400 naming the field, or served), its row is written, and the writer keeps writing."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from nemorouter.serving import BackgroundGateway
from nemorouter.testing import SimulatedProvider
from tests.services import fresh_postgres_database

from .conftest import MASTER_KEY, GatewayFactory, gateway_config

HEADERS = {"Authorization": f"Bearer {MASTER_KEY}"}
HI = [{"role": "user", "content": "hello"}]


class Store:
    def __init__(self, gateway: BackgroundGateway, url: str) -> None:
        self.gateway = gateway
        self.url = url

    def post(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return httpx.post(
            f"{self.gateway.base_url}/chat/completions",
            json=body,
            headers={**HEADERS, **headers},
            timeout=30,
        )

    def rows(self) -> dict[str, dict[str, Any]]:
        """Every spend row by request id, after this instance's waiting rows are written."""
        assert httpx.get(f"{self.gateway.url}/admin/jobs", headers=HEADERS).status_code == 200
        query = "SELECT request_id, model_requested, job_id, metadata, status FROM spend"
        if self.url.startswith("sqlite"):
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as connection:
                connection.row_factory = sqlite3.Row
                found = [dict(row) for row in connection.execute(query)]
        else:
            found = asyncio.run(_pg_rows(self.url, query))
        return {row["request_id"]: row for row in found}


async def _pg_rows(url: str, query: str) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(url)
    try:
        return [dict(row) for row in await connection.fetch(query)]
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest,
    sim: SimulatedProvider,
    start_gateway: GatewayFactory,
    tmp_path: Path,
) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/edge.db"
        yield Store(start_gateway(gateway_config(sim, database_url=url)), url)
        return
    with fresh_postgres_database() as url:
        gateway = start_gateway(gateway_config(sim, database_url=url))
        yield Store(gateway, url)
        gateway.stop()


def test_what_the_edge_accepts_is_written(store: Store) -> None:
    model = "gemini-2.5-flash"
    # An x-request-id the column cannot hold is replaced by ours; one that fits is kept.
    too_long = store.post({"model": model, "messages": HI}, **{"x-request-id": "r" * 101})
    assert too_long.status_code == 200
    ours = too_long.headers["x-request-id"]
    assert ours.startswith("req_")
    fits = "f" * 100
    assert store.post({"model": model, "messages": HI}, **{"x-request-id": fits}).status_code == 200

    refused = {
        "nul-model": ({"model": "gemini\u0000", "messages": HI}, "model"),
        "long-model": ({"model": "m" * 201, "messages": HI}, "model"),
        "nul-job": ({"model": model, "messages": HI, "metadata": {"job_id": "a\u0000"}}, "metadata.job_id"),
        "long-job": ({"model": model, "messages": HI, "metadata": {"job_id": "j" * 201}}, "metadata.job_id"),
        "nul-job-tag": ({"model": model, "messages": HI, "metadata": {"tags": ["job:a\u0000"]}}, "metadata.tags"),
        "huge-n": ({"model": model, "messages": HI, "n": 2**64}, "n"),
        "huge-tokens": ({"model": model, "messages": HI, "max_tokens": 2**31}, "max_tokens"),
        "deep": ({"model": model, "messages": HI, "metadata": {"b": _deep(300)}}, "metadata"),
    }  # fmt: skip
    for request_id, (body, field) in refused.items():
        answer = store.post(body, **{"x-request-id": request_id})
        assert answer.status_code == 400, (request_id, answer.text)
        assert answer.json()["error"]["param"] == field, request_id

    # NUL in metadata keys and values is stored (JSON-escaped), not refused.
    metadata = {"job_id": "edge-job", "page\u0000": "a\u0000b"}
    served = store.post({"model": model, "messages": HI, "metadata": metadata}, **{"x-request-id": "meta"})  # fmt: skip
    assert served.status_code == 200
    after = store.post({"model": model, "messages": HI}, **{"x-request-id": "after"})
    assert after.status_code == 200

    rows = store.rows()
    assert {ours, fits, *refused, "meta", "after"} <= set(rows)
    assert all(rows[request_id]["status"] == 400 for request_id in refused)
    assert rows["meta"]["job_id"] == "edge-job"
    assert rows["meta"]["metadata"] == '{"page\\u0000":"a\\u0000b"}'
    assert "\x00" not in "".join(str(value) for row in rows.values() for value in row.values())


def _deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value
