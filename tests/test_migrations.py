from __future__ import annotations

import asyncpg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

import models
from models.schema_compare import include_object
from tests.conftest import alembic_config


def _diff(sync_conn: Connection) -> list[object]:
    context = MigrationContext.configure(
        sync_conn, opts={"include_object": include_object, "compare_type": True}
    )
    return list(compare_metadata(context, models.Base.metadata))


async def test_models_and_migrations_agree(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []


def _run(sync_conn: Connection, url: str, direction: str, target: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = sync_conn
    getattr(command, direction)(config, target)


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        rows = await conn.fetch("select tablename from pg_tables where schemaname = 'public'")
    finally:
        await conn.close()
    return {row["tablename"] for row in rows} - {"spatial_ref_sys"}


async def test_upgrade_from_empty_then_downgrade_to_base(test_database_url: str) -> None:
    url = make_url(test_database_url)
    scratch = url.set(database=f"{url.database}_migrations").render_as_string(False)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(scratch).database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{make_url(scratch).database}"')
    finally:
        await conn.close()

    engine = create_async_engine(scratch)
    try:
        async with engine.begin() as c:
            await c.run_sync(_run, scratch, "upgrade", "head")
        assert {"boundary_set", "kecamatan", "kelurahan", "kelurahan_piece"} <= await _tables(
            scratch
        )
        async with engine.begin() as c:
            await c.run_sync(_run, scratch, "downgrade", "base")
        assert await _tables(scratch) == {"alembic_version"}
        async with engine.begin() as c:
            await c.run_sync(_run, scratch, "upgrade", "head")
        assert "kelurahan" in await _tables(scratch)
    finally:
        await engine.dispose()
