"""How fast the spend store takes records and answers the admin queries at job scale.

Writes N spend rows through the batched writer (one job of N requests among other jobs'
rows), then times /admin/jobs/{id}, /admin/jobs and /admin/spend's queries.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from nemorouter.store.analytics import job_report, jobs_list, spend_report
from nemorouter.store.engine import create_engine, upgrade
from nemorouter.store.writer import SpendWriter


def _row(i: int, job: str, start: datetime) -> dict[str, Any]:
    created = start + timedelta(milliseconds=i * 10)
    return {
        "request_id": uuid.uuid4().hex,
        "created_at": created,
        "day": created.date(),
        "key_id": f"key-{i % 7}",
        "team_id": f"team-{i % 3}",
        "job_id": job,
        "metadata": None,
        "model_requested": "document-vision",
        "model": random.choice(["gemini-2.5-flash", "gemini-2.5-pro", "claude-sonnet-4-5"]),
        "deployment": "d1",
        "provider": "vertex-us",
        "prompt_tokens": 1500,
        "completion_tokens": 200,
        "cached_tokens": 0,
        "cost_pico": random.randint(10**8, 10**10),
        "cache_hit": i % 20 == 0,
        "saved_pico": 0,
        "fallbacks": 0,
        "attempts": 1,
        "stream": False,
        "status": 200,
        "error_code": None,
        "latency_ms": 800.0,
    }


async def _timed(label: str, run: Callable[[], Awaitable[Any]], repeat: int = 5) -> None:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await run()
        times.append((time.perf_counter() - started) * 1000)
    print(f"  {label:<38} median {statistics.median(times):8.1f} ms  (max {max(times):.1f})")


async def _bench(url: str, rows: int, other_jobs: int) -> None:
    engine = create_engine(url)
    await upgrade(engine)
    writer = SpendWriter(engine)
    writer.start()
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=2)
    started = time.perf_counter()
    for i in range(rows):
        await writer.add(_row(i, "big-job", start))
    for j in range(other_jobs):
        for i in range(rows // other_jobs):
            await writer.add(_row(i, f"job-{j}", start))
    await writer.flush()
    elapsed = time.perf_counter() - started
    total = rows + (rows // other_jobs) * other_jobs
    print(f"  wrote {total} rows in {elapsed:.1f} s ({total / elapsed:,.0f} rows/s)")
    await _timed("/admin/jobs/big-job", lambda: job_report(engine, "big-job"))
    await _timed("/admin/jobs (list)", lambda: jobs_list(engine))
    await _timed("/admin/spend?group_by=model", lambda: spend_report(engine, "model"))
    await _timed(
        "/admin/spend?group_by=day&job_id=big-job",
        lambda: spend_report(engine, "day", job_id="big-job"),
    )
    await writer.close()
    await engine.dispose()


async def _fresh_postgres(base: str) -> tuple[str, str]:
    name = f"nemo_bench_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(base)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    return base.rsplit("/", 1)[0] + "/" + name, name


async def _drop_postgres(base: str, name: str) -> None:
    connection = await asyncpg.connect(base)
    await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="requests of the big job")
    parser.add_argument("--other-jobs", type=int, default=50)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    path = f"/tmp/nemorouter-bench-{uuid.uuid4().hex[:8]}.db"
    print(f"SQLite ({path})")
    asyncio.run(_bench(f"sqlite:///{path}", args.rows, args.other_jobs))
    if not args.skip_postgres:
        url, name = asyncio.run(_fresh_postgres(args.postgres))
        print(f"PostgreSQL ({name})")
        try:
            asyncio.run(_bench(url, args.rows, args.other_jobs))
        finally:
            asyncio.run(_drop_postgres(args.postgres, name))
    return 0
