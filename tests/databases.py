"""Databases of a test module's own, for tests that run real server processes
against committed data (the per-test rolled-back transaction cannot reach
another process)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from core.settings import Settings
from tests.conftest import _recreate_database, _upgrade_head, credentials_for


async def prepare(url: str, shared_data_dir: Path) -> None:
    """Migrated, with the official boundaries active and the reference data."""
    from geo.importer import ImportOptions, import_boundaries, plan_import
    from seeds.reference import REFERENCE_STEPS

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_head, url)
        plan = plan_import(
            kelurahan=json.loads((shared_data_dir / "kelurahan.geojson").read_text()),
            kecamatan=None,
            options=ImportOptions(source="Kemendagri kelurahan boundaries (test data)"),
        )
        async with AsyncSession(bind=engine) as session, session.begin():
            await import_boundaries(session=session, plan=plan, activate=True)
            for step in REFERENCE_STEPS:
                await step(session=session)
    finally:
        await engine.dispose()


@asynccontextmanager
async def own_database(
    test_database_url: str, shared_data_dir: Path, *, suffix: str
) -> AsyncIterator[str]:
    """A prepared database beside the test database, dropped afterwards."""
    target = make_url(test_database_url)
    url = target.set(database=f"{target.database}_{suffix}").render_as_string(hide_password=False)
    await _recreate_database(url)
    await prepare(url, shared_data_dir)
    try:
        yield url
    finally:
        admin = make_url(url).set(drivername="postgresql", database="postgres")
        conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
        finally:
            await conn.close()


async def committed_credentials_in(
    url: str, settings: Settings, specs: Iterable[str | None]
) -> dict[str, dict[str, str]]:
    """Headers per caller spec (see tests/conftest.py `caller`), committed in `url`."""
    engine = create_async_engine(url)
    try:
        async with AsyncSession(bind=engine) as session, session.begin():
            return {
                spec or "anonymous": await credentials_for(spec, settings=settings, session=session)
                for spec in specs
            }
    finally:
        await engine.dispose()
