"""SIGTERM with the store down loses no spend record (issue 16, item 2): the gateway exits
within its bound, the records it could not write are in its journal, and the next start
writes every one of them exactly once."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from nemorouter.testing import SimulatedProvider
from nemorouter.testing.processes import serve_process
from tests.private_services import PrivatePostgres

from .conftest import MASTER_KEY
from .test_spend_ledger import checkpoint

BEFORE_OUTAGE = 100
DURING_OUTAGE = 200
EXIT_BOUND_S = 20.0  # the writer's 10 s to write what waits, the connections' 5 s, slack


async def _request_id_counts(url: str) -> dict[str, int]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT request_id, count(*) FROM spend GROUP BY 1")
    finally:
        await connection.close()
    return {row[0]: row[1] for row in rows}


def _send(url: str, ids: list[str]) -> None:
    body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(timeout=30) as client:
        for request_id in ids:
            answer = client.post(
                f"{url}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {MASTER_KEY}", "x-request-id": request_id},
            )
            assert answer.status_code == 200, answer.text


@pytest.mark.timeout(180)
def test_sigterm_with_the_store_down_loses_nothing(sim: SimulatedProvider, tmp_path: Path) -> None:
    journal_dir = tmp_path / "journal"
    with PrivatePostgres() as postgres:
        config = {
            "settings": {
                "master_key": MASTER_KEY,
                "database_url": postgres.url,
                "spend_journal_dir": str(journal_dir),
                "cache": {"enabled": False},
            },
            "providers": {"sim": {"type": "openai-compatible", "base_url": sim.base_url}},
            "deployments": [{"id": "flash", "model": "gemini-2.5-flash", "provider": "sim"}],
        }
        before = [f"before-{i}" for i in range(BEFORE_OUTAGE)]
        during = [f"during-{i}" for i in range(DURING_OUTAGE)]
        with serve_process(config, tmp_path) as (process, url):
            _send(url, before)
            assert httpx.get(f"{url}/admin/spend", headers={"Authorization": f"Bearer {MASTER_KEY}"}).status_code == 200  # fmt: skip
            checkpoint(postgres.url)
            postgres.stop()
            _send(url, during)  # answered; their records cannot be written
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=EXIT_BOUND_S + 10)
            exit_s = time.monotonic() - started
            assert process.stderr is not None
            log = process.stderr.read()
        assert exit_s < EXIT_BOUND_S, f"SIGTERM took {exit_s:.1f}s"
        assert f"{DURING_OUTAGE} spend records not written" in log, log[-3000:]
        [journal] = journal_dir.glob("nemorouter-spend-journal-*.jsonl")
        assert len(journal.read_text().splitlines()) == DURING_OUTAGE + 1  # and its header

        postgres.start()
        with serve_process(config, tmp_path, name="restarted"):
            counts = asyncio.run(_request_id_counts(postgres.url))
        lost = set(before + during) - set(counts)
        doubled = {request_id for request_id, count in counts.items() if count > 1}
        print(f"SIGTERM with the store down: exit in {exit_s:.1f}s, "
              f"{len(lost)} of {len(before) + len(during)} lost, {len(doubled)} doubled")  # fmt: skip
        assert not lost and not doubled
        assert set(counts) == set(before + during)
        assert list(journal_dir.glob("nemorouter-spend-journal-*.jsonl")) == []
