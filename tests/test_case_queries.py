"""Reading cases through GraphQL: filters, pagination and the cost of related objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from tests import bekasi
from tests.factories import make_case

pytestmark = pytest.mark.usefixtures("reference_data")


@pytest.fixture
def caller() -> str:
    return "POC_OPERATOR"


PAGE = """
query Page($first: Int!, $after: String, $filter: CaseFilterInput) {
  cases(first: $first, after: $after, filter: $filter) {
    totalCount
    edges { cursor node { ticket title } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def _tickets(graphql: Any, filter_: dict[str, Any], first: int = 100) -> list[str]:
    body = await graphql(PAGE, {"first": first, "filter": filter_})
    assert "errors" not in body, body
    return [e["node"]["ticket"] for e in body["data"]["cases"]["edges"]]


async def test_case_by_ticket(graphql: Any, session: AsyncSession) -> None:
    case = await make_case(session, title="Lampu jalan mati total")
    body = await graphql(
        "query($t: String!) { case(ticket: $t) { ticket title status dinas { code } } }",
        {"t": case.ticket.lower()},
    )
    assert body["data"]["case"]["ticket"] == case.ticket
    missing = await graphql('{ case(ticket: "BKS-0001-000000") { ticket } }')
    assert missing["data"]["case"] is None


async def test_pages_neither_skip_nor_repeat_while_cases_arrive(
    graphql: Any, session: AsyncSession
) -> None:
    created = [await make_case(session, title=f"Kasus halaman {i}") for i in range(25)]
    expected = [c.ticket for c in reversed(created)]
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        body = await graphql(PAGE, {"first": 10, "after": after, "filter": {"text": "halaman"}})
        connection = body["data"]["cases"]
        seen += [e["node"]["ticket"] for e in connection["edges"]]
        pages += 1
        # New reports arrive between page requests.
        await make_case(session, title=f"Kasus baru halaman {pages}")
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == expected
    assert pages == 3


@pytest.mark.parametrize("role", ["POC_OPERATOR", "MAYOR", "ADMIN", "CAMAT:32.75.08"])
async def test_total_count_without_a_filter_counts_every_case_in_scope(
    graphql: Any, session: AsyncSession, role: str, shared_data_dir: Path
) -> None:
    from sqlalchemy import func, select

    from models import Case

    for i in range(3):
        await make_case(session, title=f"Kasus dihitung {i}")
    everything = int(await session.scalar(select(func.count()).select_from(Case)) or 0)
    in_kecamatan = int(
        await session.scalar(
            select(func.count()).select_from(Case).where(Case.kecamatan_code == "32.75.08")
        )
        or 0
    )
    body = await graphql("{ cases(first: 1) { totalCount } }", as_=role)
    assert "errors" not in body, body
    expected = in_kecamatan if role.startswith("CAMAT") else everything
    assert everything >= 3
    assert body["data"]["cases"]["totalCount"] == expected


async def test_page_size_is_capped(graphql: Any) -> None:
    body = await graphql(PAGE, {"first": 101})
    assert body["errors"][0]["message"] == "`first` must be between 1 and 100"
    bad_cursor = await graphql(PAGE, {"first": 5, "after": "bm9wZQ=="})
    assert "cursor" in bad_cursor["errors"][0]["message"]


async def test_filters(graphql: Any, session: AsyncSession, shared_data_dir: Path) -> None:
    lat1, lon1 = bekasi.interior_lat_lon(shared_data_dir, "32.75.01.1001")
    lat2, lon2 = bekasi.interior_lat_lon(shared_data_dir, "32.75.09.1002")
    road = await make_case(session, lat=lat1, lon=lon1, title="Jalan amblas dekat pasar")
    rubbish = await make_case(
        session,
        lat=lat2,
        lon=lon2,
        category_code="SAMPAH",
        title="Tumpukan sampah",
        source="SOROT",
    )
    both = {road.ticket, rubbish.ticket}

    async def only(filter_: dict[str, Any]) -> set[str]:
        return set(await _tickets(graphql, filter_)) & both

    assert await only({"kelurahanCodes": ["32.75.01.1001"]}) == {road.ticket}
    assert await only({"kecamatanCodes": ["32.75.09"]}) == {rubbish.ticket}
    assert await only({"dinasCodes": ["DLH"]}) == {rubbish.ticket}
    assert await only({"categoryCodes": ["JALAN_RUSAK"]}) == {road.ticket}
    assert await only({"sources": ["SOROT"]}) == {rubbish.ticket}
    assert await only({"statuses": ["RECEIVED"], "kinds": ["LAPORAN"]}) == both
    assert await only({"text": "amblas"}) == {road.ticket}
    assert await only(
        {
            "bbox": {
                "west": lon1 - 0.001,
                "south": lat1 - 0.001,
                "east": lon1 + 0.001,
                "north": lat1 + 0.001,
            }
        }
    ) == {road.ticket}
    assert await only({"near": {"lat": lat2, "lon": lon2, "radiusM": 100}}) == {rubbish.ticket}
    assert await only({"createdFrom": "2000-01-01T00:00:00Z"}) == both
    assert await only({"createdTo": "2000-01-01T00:00:00Z"}) == set()


async def test_a_page_of_100_cases_costs_a_fixed_number_of_statements(
    graphql: Any, session: AsyncSession, connection: AsyncConnection, shared_data_dir: Path
) -> None:
    codes = [k.code for k in bekasi.kelurahan_shapes(shared_data_dir)]
    categories = ["JALAN_RUSAK", "SAMPAH", "PJU_MATI", "PARKIR_LIAR"]
    for i in range(100):
        lat, lon = bekasi.interior_lat_lon(shared_data_dir, codes[i % len(codes)])
        await make_case(session, lat=lat, lon=lon, category_code=categories[i % 4])

    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(connection.sync_connection, "before_cursor_execute", count)
    try:
        body = await graphql(
            "{ cases(first: 100) { edges { node { ticket kelurahan { name } "
            "kecamatan { name } dinas { code } category { code } history { type } } } } }"
        )
    finally:
        event.remove(connection.sync_connection, "before_cursor_execute", count)
    assert len(body["data"]["cases"]["edges"]) == 100
    # cases, kelurahan, kecamatan, dinas, category, events, plus savepoint bookkeeping.
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) <= 6, selects
    assert len(statements) <= 10, statements


async def test_created_range_needs_a_time_zone_offset(graphql: Any) -> None:
    naive = await graphql(PAGE, {"first": 5, "filter": {"createdFrom": "2026-12-01T00:00:00"}})
    assert naive["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "createdFrom" in naive["errors"][0]["message"]
    assert "offset" in naive["errors"][0]["message"]
    aware = await graphql(
        PAGE, {"first": 5, "filter": {"createdFrom": "2026-12-01T00:00:00+07:00"}}
    )
    assert "errors" not in aware, aware
