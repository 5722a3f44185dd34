"""Alembic migrations: applied at start, idempotent, safe for workers starting together."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect, text

from nemorouter.store.engine import create_engine, upgrade
from nemorouter.store.schema import spend

from .rows import spend_row


async def test_upgrade_creates_the_schema_and_is_idempotent(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        await upgrade(engine)  # a restart finds nothing to do
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            indexes = await connection.run_sync(
                lambda c: {index["name"] for index in inspect(c).get_indexes("spend")}
            )
            version = (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar()
        assert {"spend", "alembic_version"} <= tables
        assert {"ix_spend_job", "ix_spend_created_at", "ix_spend_key", "ix_spend_model"} <= indexes
        assert version is not None
    finally:
        await engine.dispose()


async def test_concurrent_upgrades_do_not_collide(database_url: str) -> None:
    engines = [create_engine(database_url) for _ in range(3)]
    try:
        await asyncio.gather(*(upgrade(engine) for engine in engines))
        async with engines[0].connect() as connection:
            count = (
                await connection.execute(text("SELECT count(*) FROM alembic_version"))
            ).scalar()
        assert count == 1
    finally:
        for engine in engines:
            await engine.dispose()


def test_head_revision_is_alembics_head() -> None:
    """The start-up shortcut (skip Alembic when the store is at HEAD_REVISION) must know
    the real head."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from nemorouter.store.engine import HEAD_REVISION, MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


async def test_pages_column_is_added_to_existing_spend_rows(database_url: str) -> None:
    """0003 adds `pages` to a store that already holds spend rows: they read 0 pages, and
    the migrated table has the columns of store/schema.py."""
    engine = create_engine(database_url)
    try:
        await upgrade(engine, "0002")
        old = spend_row()
        del old["pages"], old["deferred"]  # added by 0003, 0004
        names = ", ".join(old)
        values = ", ".join(f":{name}" for name in old)
        async with engine.begin() as connection:
            await connection.execute(text(f"INSERT INTO spend ({names}) VALUES ({values})"), old)
        await upgrade(engine)
        async with engine.connect() as connection:
            pages = (await connection.execute(text("SELECT pages FROM spend"))).scalars().all()
            deferred = (await connection.execute(text("SELECT deferred FROM spend"))).scalars()
            deferred = [bool(value) for value in deferred.all()]
            columns = await connection.run_sync(
                lambda c: {column["name"] for column in inspect(c).get_columns("spend")}
            )
        assert pages == [0]
        assert deferred == [False]  # 0004: rows written before were interactive
        assert columns == {column.name for column in spend.columns}
    finally:
        await engine.dispose()
