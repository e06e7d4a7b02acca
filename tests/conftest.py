"""Test database set-up: one fresh database per run, one rolled-back transaction per test."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from alembic.config import Config
from asgi_lifespan import LifespanManager
from sqlalchemy import make_url, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from starlette.applications import Starlette

from api.app import create_app
from core.settings import Environment, Settings
from domain.reference_cache import ReferenceCache

ROOT = Path(__file__).resolve().parent.parent


def _base_url() -> str:
    url = os.environ.get("PATRIOT_DATABASE_URL")
    if not url:
        pytest.exit("PATRIOT_DATABASE_URL is not set: run the tests with ./scripts/test", 2)
    return url


@pytest.fixture(scope="session")
def test_database_url() -> str:
    url = make_url(os.environ.get("PATRIOT_TEST_DATABASE_URL") or _base_url())
    if not os.environ.get("PATRIOT_TEST_DATABASE_URL"):
        url = url.set(database=f"{url.database}_test")
    return url.render_as_string(hide_password=False)


SHIPPED_DATA_DIR = ROOT / "seeds" / "data"


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The official Bekasi boundaries: PATRIOT_SHARED_DATA_DIR when set, else the
    shared data beside the checkout, else the copy the project ships as its seed."""
    configured = os.environ.get("PATRIOT_SHARED_DATA_DIR")
    if configured:
        path = Path(configured)
        if not (path / "kelurahan.geojson").is_file():
            pytest.exit(f"PATRIOT_SHARED_DATA_DIR={path} holds no kelurahan.geojson", 2)
        return path
    beside = ROOT.parent / "shared" / "data" / "bekasi"
    return beside if (beside / "kelurahan.geojson").is_file() else SHIPPED_DATA_DIR


@pytest.fixture(scope="session")
def settings(test_database_url: str, shared_data_dir: Path) -> Settings:
    return Settings(
        environment=Environment.TEST,
        database_url=test_database_url,
        shared_data_dir=shared_data_dir,
        # Tests sweep explicitly (app.state.sweeper.sweep_once()), never by the clock.
        sweeper_enabled=False,
        # One app serves a whole test module, whose tests act as the same few
        # callers; the tests of the limit itself configure their own.
        mutation_burst=100_000,
    )


async def _recreate_database(url: str) -> None:
    target = make_url(url)
    admin = target.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{target.database}"')
    finally:
        await conn.close()


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    return config


@pytest.fixture(scope="session")
async def engine(test_database_url: str) -> AsyncIterator[AsyncEngine]:
    await _recreate_database(test_database_url)
    engine = create_async_engine(test_database_url, pool_size=5)
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_head, test_database_url)
    yield engine
    await engine.dispose()


def _upgrade_head(sync_conn: object, url: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = sync_conn
    command.upgrade(config, "head")


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside an outer transaction that is always rolled back."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            yield conn
        finally:
            if transaction.is_active:
                await transaction.rollback()


def joined_session(connection: AsyncConnection) -> AsyncSession:
    """A session inside the test's transaction: commits in the code under test
    become savepoint releases, so the outer rollback still undoes them."""
    return AsyncSession(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
async def session(connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    session = joined_session(connection)
    try:
        yield session
    finally:
        await session.close()


@pytest.fixture(scope="session")
def anyio_backend() -> Iterator[str]:
    yield "asyncio"


@pytest.fixture(scope="session")
async def bekasi_boundary_set(engine: AsyncEngine, shared_data_dir: Path) -> int:
    """The official Bekasi boundaries, imported and activated once per run."""
    from geo.importer import ImportOptions, import_boundaries, plan_import

    plan = plan_import(
        kelurahan=json.loads((shared_data_dir / "kelurahan.geojson").read_text()),
        kecamatan=None,
        options=ImportOptions(source="Kemendagri kelurahan boundaries (test data)"),
    )
    assert plan.ok, plan.summary()
    async with AsyncSession(bind=engine, expire_on_commit=False) as session, session.begin():
        return await import_boundaries(session=session, plan=plan, activate=True)


@pytest.fixture(scope="module")
async def module_app(settings: Settings) -> AsyncIterator[Starlette]:
    """One real app per test module: starting one (live feed, boundary index,
    pub/sub) for every test cost more than many of the tests themselves."""
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=30, shutdown_timeout=30):
        yield application


@pytest.fixture
async def app(module_app: Starlette, connection: AsyncConnection) -> AsyncIterator[Starlette]:
    """The module's app; every session it opens joins this test's rolled-back
    transaction, and what a test swaps in is put back after it."""
    state = module_app.state
    saved = (state.session_factory, state.pubsub, state.services)
    state.session_factory = functools.partial(joined_session, connection)
    # Caches of the process must not carry one test's rolled-back data (reference
    # data, rate-limit buckets) into the next.
    state.services = dataclasses.replace(state.services, intake_reference=ReferenceCache())
    try:
        yield module_app
    finally:
        state.session_factory, state.pubsub, state.services = saved


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://patriot.test") as client:
        yield client


@pytest.fixture
def caller() -> str | None:
    """Who the `graphql` fixture calls as; test modules override it.

    None is anonymous; "partner:POT" a partner key of POT; "POC_OPERATOR" a staff
    token; "CAMAT:32.75.08", "LURAH:32.75.08.1001", "DINAS_HEAD:DLH" scoped ones.
    """
    return None


@pytest.fixture
def credentials(settings: Settings, session: AsyncSession):  # type: ignore[no-untyped-def]
    """Headers for a caller spec (see `caller`); partner keys live in the test's transaction."""

    async def make(spec: str | None) -> dict[str, str]:
        return await credentials_for(spec, settings=settings, session=session)

    return make


@pytest.fixture
def graphql(client: httpx.AsyncClient, caller: str | None, credentials: Any):  # type: ignore[no-untyped-def]
    """POST a GraphQL document as `caller` (or `as_`); returns the decoded body."""

    async def run(
        query: str, variables: dict[str, object] | None = None, *, as_: str | None = "default"
    ) -> dict[str, Any]:
        spec = caller if as_ == "default" else as_
        headers = await credentials(spec)
        response = await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        if spec is None or spec == "ADMIN":
            # Callers who may never see a reporter, whatever the test is about.
            assert_no_reporter_details(response.text)
        body: dict[str, Any] = response.json()
        return body

    return run


# The reporter details that the factories put on every report they make.
SEEDED_REPORTER_DETAILS = ("+6281234567890", "6281234567890", "siti@example.id", "Siti Aminah")


def assert_no_reporter_details(text: str) -> None:
    leaked = [detail for detail in SEEDED_REPORTER_DETAILS if detail in text]
    assert not leaked, f"reporter details leaked: {leaked}"


async def credentials_for(
    spec: str | None, *, settings: Settings, session: AsyncSession
) -> dict[str, str]:
    if spec is None:
        return {}
    kind, _, scope = spec.partition(":")
    if kind == "partner":
        return {"x-api-key": await add_partner_key(session, scope)}
    return staff_headers(spec, settings=settings)


async def add_partner_key(session: AsyncSession, partner_code: str) -> str:
    from api.auth import hash_key, new_key
    from models import Partner, PartnerKey

    partner_id = await session.scalar(select(Partner.id).where(Partner.code == partner_code))
    assert partner_id is not None, f"no partner {partner_code}"
    key = new_key()
    session.add(
        PartnerKey(partner_id=partner_id, name="test", key_hash=hash_key(key), key_prefix=key[:12])
    )
    await session.flush()
    return key


def staff_headers(spec: str, *, settings: Settings) -> dict[str, str]:
    from api.auth import issue_token
    from domain.access import Role

    kind, _, scope = spec.partition(":")
    role = Role(kind)
    claim = {
        Role.CAMAT: "kecamatan",
        Role.LURAH: "kelurahan",
        Role.KELURAHAN_OFFICER: "kelurahan",
        Role.DINAS_HEAD: "dinas",
        Role.DINAS_OFFICER: "dinas",
    }.get(role)
    token = issue_token(
        settings=settings,
        subject=f"test-{kind.lower()}",
        role=role,
        scope={claim: scope} if claim else None,
    )
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
async def committed_credentials(
    engine: AsyncEngine, settings: Settings, reference_data: None
) -> Callable[[str | None], dict[str, str]]:
    """Headers for callers of real server processes: partner keys committed once per run."""
    keys: dict[str, str] = {}
    async with AsyncSession(bind=engine, expire_on_commit=False) as session, session.begin():
        for code in ("POT", "SOROT"):
            keys[code] = await add_partner_key(session, code)

    def make(spec: str | None) -> dict[str, str]:
        if spec is None:
            return {}
        kind, _, scope = spec.partition(":")
        if kind == "partner":
            return {"x-api-key": keys[scope]}
        return staff_headers(spec, settings=settings)

    return make


@pytest.fixture(scope="session")
async def reference_data(engine: AsyncEngine, bekasi_boundary_set: int) -> None:
    """Reference seed data (partners, dinas, categories, holidays), committed once per run."""
    from seeds.reference import REFERENCE_STEPS

    async with AsyncSession(bind=engine, expire_on_commit=False) as session, session.begin():
        for step in REFERENCE_STEPS:
            await step(session=session)


async def wipe_committed_cases(engine: AsyncEngine) -> None:
    """For the few tests that must really commit cases (concurrency, several
    processes): TRUNCATE also bypasses the event log's append-only row trigger."""
    async with engine.begin() as conn:
        await conn.execute(text('TRUNCATE "case", ticket_counter CASCADE'))
