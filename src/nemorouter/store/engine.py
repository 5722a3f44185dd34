"""Open the store's async engine and bring its schema up to date (Alembic, at start)."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from nemorouter.store.url import async_url, is_sqlite, redacted

log = logging.getLogger("nemorouter.store")
MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision (files are named after their revision id): a store already at it
# starts without loading Alembic at all.
HEAD_REVISION = max(
    path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9]*_*.py")
)
# Any constant: the PostgreSQL advisory lock that serializes migrations of several workers.
_MIGRATION_LOCK_ID = 0x6E656D6F


def create_engine(database_url: str) -> AsyncEngine:
    url = async_url(database_url)
    if not is_sqlite(url):
        return create_async_engine(
            url, pool_size=10, max_overflow=10, pool_pre_ping=True, hide_parameters=True
        )
    memory = url.database in (None, "", ":memory:")
    if not memory:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
    engine = create_async_engine(
        url,
        poolclass=StaticPool if memory else None,
        connect_args={"timeout": 30},
        hide_parameters=True,  # errors may be logged; request metadata stays out of them
    )
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers (admin API) never block the spend writer; NORMAL sync is durable across
    # process crashes, which is what the batched writer's guarantees are measured against.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply every pending migration; safe when several workers start at once."""
    url = engine.url
    if revision == "head" and await _current_revision(engine) == HEAD_REVISION:
        return
    async with _file_lock(url), engine.connect() as connection:
        if not is_sqlite(url):
            await connection.execute(text(f"SELECT pg_advisory_lock({_MIGRATION_LOCK_ID})"))
        try:
            await connection.run_sync(_run_alembic, revision)
            await connection.commit()
        finally:
            if not is_sqlite(url):
                await connection.execute(text(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK_ID})"))
                await connection.commit()
    log.info("store %s: schema at %s", redacted(url), revision)


async def _current_revision(engine: AsyncEngine) -> str | None:
    try:
        async with engine.connect() as connection:
            result = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return result.scalar()
    except SQLAlchemyError:  # a new database: no version table yet
        return None


def _run_alembic(connection: Connection, revision: str) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


@asynccontextmanager
async def _file_lock(url: URL) -> AsyncIterator[None]:
    """SQLite has no advisory locks: serialize migrations with a lock file beside the DB.
    Polled without blocking, so two stores of one process (tests) cannot deadlock the loop."""
    if not is_sqlite(url) or url.database in (None, "", ":memory:"):
        yield
        return
    handle = os.open(f"{url.database}.migrate-lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.02)
        yield
    finally:
        os.close(handle)  # closing releases the lock


async def ping(engine: AsyncEngine, timeout_s: float = 2.0) -> bool:
    """Whether the database answers (readiness)."""
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
