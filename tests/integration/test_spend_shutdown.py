"""SIGTERM under load: every answered request has its spend record once the gateway exits."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from nemorouter.testing import SimulatedProvider
from nemorouter.testing.processes import send_until_stopped, serve_process
from tests.services import fresh_postgres_database

from .conftest import MASTER_KEY

CLIENTS = 24


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/spend.db"
    else:
        with fresh_postgres_database() as url:
            yield url


@pytest.mark.timeout(90)
def test_sigterm_under_load_loses_no_spend_record(
    sim: SimulatedProvider, tmp_path: Path, database_url: str
) -> None:
    sim.latency_ms = 5
    config = {
        "settings": {"master_key": MASTER_KEY, "database_url": database_url},
        "providers": {"sim": {"type": "openai-compatible", "base_url": sim.base_url}},
        "deployments": [{"id": "flash", "model": "gemini-2.5-flash", "provider": "sim"}],
    }
    with serve_process(config, tmp_path) as (process, url):
        answered: list[str] = []
        stop = threading.Event()
        clients = [
            threading.Thread(target=send_until_stopped, args=(url, MASTER_KEY, answered, stop))
            for _ in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        time.sleep(1.5)
        in_flight_at_signal = len(answered)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        stop.set()
        for client in clients:
            client.join(timeout=15)
    assert in_flight_at_signal > 100, "the load did not get going"
    recorded = _recorded_ids(database_url)
    missing = set(answered) - recorded
    assert not missing, f"{len(missing)} of {len(answered)} answered requests have no spend record"


def _recorded_ids(database_url: str) -> set[str]:
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            return {row[0] for row in connection.execute("SELECT request_id FROM spend")}

    async def fetch() -> set[str]:
        connection = await asyncpg.connect(database_url)
        try:
            return {row[0] for row in await connection.fetch("SELECT request_id FROM spend")}
        finally:
            await connection.close()

    return asyncio.run(fetch())
