"""When a mutation's single write statement is its own transaction (`Context.db`)."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import parse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.operations import _sole_root_field
from core.database import create_engine, create_session_factory
from core.settings import Settings
from domain.intake import EACH_STATEMENT_COMMITS
from schema.context import Context


@pytest.mark.parametrize(
    ("document", "operation_name", "sole"),
    [
        ("mutation { submitReport(input: $i) { __typename } }", None, True),
        ("mutation M { a: submitReport(input: $i) { __typename } }", "M", True),
        (
            "mutation { a: submitReport(input: $i) { __typename } "
            "b: submitReport(input: $j) { __typename } }",
            None,
            False,
        ),
        (
            "mutation { ...F } fragment F on Mutation { submitReport(input: $i) { __typename } }",
            None,
            False,
        ),
        ("mutation { submitReport(input: $i) @include(if: $x) { __typename } }", None, False),
        (
            "mutation A { a: submitReport(input: $i) { __typename } } mutation B { b: x c: y }",
            "B",
            False,
        ),
    ],
)
def test_sole_root_field(document: str, operation_name: str | None, sole: bool) -> None:
    assert _sole_root_field(parse(document), operation_name) is sole


def _context(settings: Settings, session_factory: Any, *, sole: bool) -> Context:
    return Context(
        request=None,  # type: ignore[arg-type]
        response=None,
        settings=settings,
        session_factory=session_factory,
        sole_mutation_field=sole,
    )


async def _each_statement_commits(session: AsyncSession) -> bool:
    """Whether two statements run in two transactions."""
    ids = [await session.scalar(text("SELECT pg_current_xact_id()::text")) for _ in range(2)]
    return bool(ids[0] != ids[1])


async def test_autocommit_only_for_a_sole_mutation_field(settings: Settings) -> None:
    engine = create_engine(settings)
    try:
        await _check_autocommit(settings, create_session_factory(engine))
    finally:
        await engine.dispose()


async def _check_autocommit(settings: Settings, factory: Any) -> None:
    context = _context(settings, factory, sole=True)
    async with context.db(each_statement_commits=True) as session:
        assert session.info.get(EACH_STATEMENT_COMMITS) is True
        assert await _each_statement_commits(session)
    await context.take_session().close()  # type: ignore[union-attr]

    for sole, asked in ((False, True), (True, False)):
        context = _context(settings, factory, sole=sole)
        async with context.db(each_statement_commits=asked) as session:
            assert EACH_STATEMENT_COMMITS not in session.info
            assert not await _each_statement_commits(session)
        await context.take_session().close()  # type: ignore[union-attr]


async def test_a_session_joined_to_an_outer_transaction_stays_in_it(
    settings: Settings, connection: AsyncConnection
) -> None:
    def factory() -> AsyncSession:
        return AsyncSession(bind=connection, join_transaction_mode="create_savepoint")

    context = _context(settings, factory, sole=True)
    async with context.db(each_statement_commits=True) as session:
        assert EACH_STATEMENT_COMMITS not in session.info
    await context.take_session().close()  # type: ignore[union-attr]
