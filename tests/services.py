"""The real PostgreSQL and Redis servers of the development machine (DESIGN §5).

A test that needs one skips with the reason when it is down, unless
NEMOROUTER_TEST_SERVICES=required (set by `make test`, so CI fails instead of skipping).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "NEMOROUTER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


def unavailable(service: str, reason: str) -> None:
    if os.environ.get("NEMOROUTER_TEST_SERVICES") == "required":
        pytest.fail(f"{service} is required for this test run but unavailable: {reason}")
    pytest.skip(f"{service} unavailable: {reason}")


async def _admin(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database for one test (module, run); dropped afterwards."""
    name = f"nemo_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable("PostgreSQL", str(exc))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
