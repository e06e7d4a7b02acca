"""Who may be shown reporters' details by a live feed (UU No. 27/2022).

Sockets following `caseEvents` share one execution per group (live/groups.py),
so what each event showed to whom is not known per socket. Instead, each socket
subscription that selects `reporter`, by a caller allowed to see reporters, is
recorded when it starts: from then on it may be shown the reporters of every
case of its scope whose events it receives (the event log says which those were).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime

from graphql import FieldNode, GraphQLError, parse
from graphql.language import Visitor, visit
from sqlalchemy.ext.asyncio import AsyncSession

from domain.access import Principal, may_see_reporter
from domain.access_log import Sighting, record_access

LIVE_FIELD = "caseEvents"
# Longer documents are parsed each time instead of filling the cache.
_CACHED_QUERY_CHARS = 8_000


class _FindsReporter(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_field(self, node: FieldNode, *_args: object) -> object:
        if node.name.value == "reporter":
            self.found = True
            return self.BREAK
        return None


def _selects_reporter(query: str) -> bool:
    try:
        document = parse(query)
    except GraphQLError:
        return False  # it will not run
    finder = _FindsReporter()
    visit(document, finder)
    return finder.found


_selects_reporter_cached = functools.lru_cache(maxsize=256)(_selects_reporter)


def may_show_reporters(principal: Principal, query: str) -> bool:
    if not (
        may_see_reporter(principal, anonymous_report=False)
        or may_see_reporter(principal, anonymous_report=True)
    ):
        return False
    if len(query) > _CACHED_QUERY_CHARS:
        return _selects_reporter(query)
    return _selects_reporter_cached(query)


async def record_subscriber(
    *, session_factory: Callable[[], AsyncSession], principal: Principal, query: str
) -> None:
    """Records, in a transaction of its own, a socket subscription that may show reporters."""
    if not may_show_reporters(principal, query):
        return
    async with session_factory() as session, session.begin():
        await record_access(
            session=session,
            principal=principal,
            sightings=[Sighting(case_id=None, operation=LIVE_FIELD)],
            at=datetime.now(UTC),
        )
