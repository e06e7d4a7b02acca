"""Statistics, heatmap and choropleth: SQL against the Python definitions, on PostGIS."""

from __future__ import annotations

import json
import random
import statistics
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from geoalchemy2.functions import ST_Intersects, ST_MakePoint, ST_SetSRID, ST_Transform
from sqlalchemy import DateTime, func, literal, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ValidationFailed
from domain.case_queries import CaseFilter
from domain.stats.flows import case_stats
from domain.stats.grouping import StatsGroup
from domain.stats.measures import load_holidays, working_hours_sql
from domain.working_days import JAKARTA, working_hours_between
from geo.case_filters import BBox
from geo.heatmap import HexGrid, utm_srid
from models import Case, Holiday
from tests import bekasi
from tests.factories import make_case

pytestmark = pytest.mark.usefixtures("reference_data")


@pytest.fixture
def caller() -> str:
    return "POC_OPERATOR"


BEKASI = BBox(west=106.88, south=-6.42, east=107.06, north=-6.15)
# A fortnight around Nyepi and Idul Fitri 2026: weekends and eight holidays in a row.
MARCH = datetime(2026, 3, 9, tzinfo=JAKARTA)


def wib(day: int, hour: int = 9, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=JAKARTA)


async def _holidays(session: AsyncSession) -> list[date]:
    return await load_holidays(session=session)


# -- working hours --------------------------------------------------------------------


async def test_working_hours_in_sql_equal_the_python_definition(session: AsyncSession) -> None:
    holidays = await _holidays(session)
    assert date(2026, 3, 19) in holidays
    rng = random.Random(7)
    pairs = [
        # Same day, over a weekend, over the holidays, across midnight WIB, one second.
        (wib(9, 8), wib(9, 17)),
        (wib(13, 12), wib(16, 12)),
        (wib(17, 23, 30), wib(25, 0, 30)),
        (wib(18, 0), wib(24, 23, 59)),
        (datetime(2026, 3, 9, 16, 59, tzinfo=UTC), datetime(2026, 3, 9, 17, 1, tzinfo=UTC)),
        (wib(1, 0), wib(1, 0)),
    ]
    for _ in range(200):
        start = MARCH - timedelta(days=40) + timedelta(seconds=rng.randrange(90 * 86_400))
        pairs.append((start, start + timedelta(seconds=rng.randrange(30 * 86_400))))
    for start, end in pairs:
        got = await session.scalar(
            select(
                working_hours_sql(
                    literal(start, DateTime(timezone=True)), literal(end, DateTime(timezone=True))
                )
            )
        )
        assert got == pytest.approx(working_hours_between(start, end, holidays), abs=1e-6), (
            start,
            end,
        )


async def _stored_hours(session: AsyncSession, case: Case) -> float | None:
    return await session.scalar(
        select(Case.working_hours_to_resolve)
        .where(Case.id == case.id)
        .execution_options(populate_existing=True)
    )


async def test_working_hours_are_stored_on_resolution_and_follow_the_holidays(
    session: AsyncSession,
) -> None:
    case = await _case(session, wib(2, 9))  # Monday 2 March
    await session.flush()
    assert await _stored_hours(session, case) is None
    _resolve(case, wib(6, 15))  # Friday
    await session.flush()
    holidays = await _holidays(session)
    assert await _stored_hours(session, case) == pytest.approx(
        working_hours_between(wib(2, 9), wib(6, 15), holidays), abs=1e-6
    )
    assert await _stored_hours(session, case) == pytest.approx(15 + 3 * 24 + 15)

    # A holiday declared afterwards on the Wednesday takes its 24 hours away; one on a
    # Saturday changes nothing; removing it gives them back.
    wednesday = Holiday(day=date(2026, 3, 4), name="Libur tambahan")
    session.add_all([wednesday, Holiday(day=date(2026, 3, 7), name="Sabtu")])
    await session.flush()
    assert await _stored_hours(session, case) == pytest.approx(15 + 2 * 24 + 15)
    await session.delete(wednesday)
    await session.flush()
    assert await _stored_hours(session, case) == pytest.approx(15 + 3 * 24 + 15)


# -- caseStats --------------------------------------------------------------------------


async def _case(session: AsyncSession, created: datetime, **overrides: Any) -> Case:
    return await make_case(session, now=created, **overrides)


async def _cases_across_kelurahan(
    session: AsyncSession, shared_data_dir: Path, *, seed: int, kelurahan: int, each: int
) -> list[Case]:
    """`each` cases at 09:00 well inside each of `kelurahan` kelurahan picked at random."""
    rng = random.Random(seed)
    shapes = bekasi.kelurahan_shapes(shared_data_dir)
    created = []
    for kel in rng.sample(list(shapes), kelurahan):
        for point in bekasi.points_inside(kel.utm, margin_m=60, count=each, rng=rng):
            lat, lon = bekasi.to_lat_lon(point)
            created.append(await _case(session, wib(9), lat=lat, lon=lon))
    await session.flush()
    return created


def _resolve(case: Case, at: datetime, status: str = "RESOLVED") -> None:
    case.status = status
    case.resolved_at = at


CASE_STATS = """
query Stats($groupBy: StatsGroupBy!, $from: DateTime!, $to: DateTime!, $filter: CaseFilterInput) {
  caseStats(groupBy: $groupBy, from: $from, to: $to, filter: $filter) {
    groupBy from to
    total { key received open overdue resolved resolvedOnTime onTimeShare
            medianHoursToResolve p90HoursToResolve }
    groups { key label bucketStart received open overdue resolved resolvedOnTime onTimeShare
             medianHoursToResolve p90HoursToResolve }
  }
}
"""


async def _stats(graphql: Any, group_by: str, start: datetime, end: datetime, **extra: Any) -> Any:
    body = await graphql(
        CASE_STATS,
        {"groupBy": group_by, "from": start.isoformat(), "to": end.isoformat(), **extra},
    )
    assert "errors" not in body, body
    return body["data"]["caseStats"]


async def test_counts_shares_and_working_hour_percentiles(
    session: AsyncSession, graphql: Any, shared_data_dir: Path
) -> None:
    holidays = await _holidays(session)
    far = bekasi.interior_lat_lon(shared_data_dir, "32.75.08.1001")
    # JALAN_RUSAK (DBMSDA, 7 working days) and SAMPAH (DLH, 3 working days).
    road = [await _case(session, wib(9, 8 + i), category_code="JALAN_RUSAK") for i in range(5)]
    rubbish = [
        await _case(session, wib(10, 9), category_code="SAMPAH", lat=far[0], lon=far[1]),
        await _case(session, wib(16, 14), category_code="SAMPAH", lat=far[0], lon=far[1]),
    ]
    before_range = await _case(session, wib(2, 9), category_code="JALAN_RUSAK")
    _resolve(road[0], wib(9, 20))
    _resolve(road[1], wib(25, 10), status="CLOSED")  # across the holidays: still on time?
    _resolve(road[2], wib(10, 9))
    road[2].status = "REOPENED"  # its resolution no longer stands
    _resolve(rubbish[0], wib(26, 8))  # 3 working days from 10 March: late
    _resolve(before_range, wib(12, 9))  # received before the range, resolved in it
    await session.flush()

    start, end = wib(9, 0), wib(1, 0, month=4)
    result = await _stats(graphql, "DINAS", start, end)
    now = datetime.now(UTC)
    resolved = [road[0], road[1], rubbish[0], before_range]
    hours = sorted(
        working_hours_between(c.created_at, c.resolved_at, holidays)
        for c in resolved
        if c.resolved_at
    )
    total = result["total"]
    assert total["key"] is None
    assert total["received"] == 7
    assert total["resolved"] == 4
    on_time = [c for c in resolved if c.resolved_at and c.resolved_at <= c.due_at]
    assert total["resolvedOnTime"] == len(on_time)
    assert total["onTimeShare"] == pytest.approx(len(on_time) / 4, abs=1e-4)
    assert total["open"] == 4  # road[2] reopened, road[3], road[4], rubbish[1]
    assert total["overdue"] == sum(
        1 for c in (road[2], road[3], road[4], rubbish[1]) if c.due_at < now
    )
    assert total["medianHoursToResolve"] == pytest.approx(statistics.median(hours), abs=0.01)
    assert total["p90HoursToResolve"] == pytest.approx(np.percentile(hours, 90), abs=0.01)

    groups = {g["key"]: g for g in result["groups"]}
    assert set(groups) == {"DBMSDA", "DLH"}
    assert groups["DBMSDA"]["label"] == "DBMSDA"
    assert groups["DBMSDA"]["received"] == 5
    assert groups["DBMSDA"]["resolved"] == 3
    assert groups["DLH"]["received"] == 2
    assert groups["DLH"]["resolved"] == 1
    assert groups["DLH"]["resolvedOnTime"] == 0
    assert groups["DLH"]["onTimeShare"] == 0
    rubbish_hours = working_hours_between(rubbish[0].created_at, wib(26, 8), holidays)
    assert groups["DLH"]["medianHoursToResolve"] == pytest.approx(rubbish_hours, abs=0.01)
    assert sum(g["received"] for g in groups.values()) == total["received"]
    # 10 March 09:00 to 26 March 08:00 WIB: 10, 11, 12, 13, 16, 17 March are working
    # days, 18 to 24 March holidays, 25 March a working day, then 8 hours of the 26th.
    assert rubbish_hours == pytest.approx(15 + 5 * 24 + 24 + 8)


async def test_groups_by_kelurahan_status_and_source(
    session: AsyncSession, graphql: Any, shared_data_dir: Path
) -> None:
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, "32.75.08.1001")
    await _case(session, wib(9), lat=lat, lon=lon)
    await _case(session, wib(9), lat=lat, lon=lon)
    city_wide = await _case(
        session, wib(9), kind="ASPIRASI", location=None, category_code="JALAN_RUSAK"
    )
    assert city_wide.kelurahan_code is None
    await session.flush()
    start, end = wib(1), wib(1, month=4)

    by_kelurahan = {g["key"]: g for g in (await _stats(graphql, "KELURAHAN", start, end))["groups"]}
    assert by_kelurahan["32.75.08.1001"]["received"] == 2
    assert by_kelurahan["32.75.08.1001"]["label"]
    assert by_kelurahan[None]["received"] == 1  # the city-wide aspiration

    by_status = (await _stats(graphql, "STATUS", start, end))["groups"]
    assert by_status == [
        {
            **by_status[0],
            "key": "RECEIVED",
            "label": "Diterima",
            "received": 3,
            "open": 3,
        }
    ]
    by_source = (await _stats(graphql, "SOURCE", start, end))["groups"]
    assert [(g["key"], g["label"]) for g in by_source] == [("POT", "Pelaporan Online Terpadu")]


async def test_days_and_weeks_are_jakarta_buckets_with_empty_ones_filled(
    session: AsyncSession, graphql: Any
) -> None:
    # 17:30 UTC on Monday 9 March is 00:30 WIB on Tuesday 10 March.
    late = await _case(session, datetime(2026, 3, 9, 17, 30, tzinfo=UTC))
    _resolve(late, datetime(2026, 3, 15, 18, 0, tzinfo=UTC))  # Monday 16 March 01:00 WIB
    await session.flush()
    start, end = wib(9, 0), wib(17, 0)
    days = (await _stats(graphql, "DAY", start, end))["groups"]
    assert [d["key"] for d in days] == [f"2026-03-{d:02d}" for d in range(9, 17)]
    received = {d["key"]: d["received"] for d in days}
    resolved = {d["key"]: d["resolved"] for d in days}
    assert received == {d["key"]: (1 if d["key"] == "2026-03-10" else 0) for d in days}
    assert resolved == {d["key"]: (1 if d["key"] == "2026-03-16" else 0) for d in days}
    assert days[1]["bucketStart"] == "2026-03-10T00:00:00+07:00"

    weeks = (await _stats(graphql, "WEEK", start, end))["groups"]
    assert [(w["key"], w["received"], w["resolved"]) for w in weeks] == [
        ("2026-03-09", 1, 0),
        ("2026-03-16", 0, 1),
    ]


async def test_the_filter_applies_to_every_measure(session: AsyncSession, graphql: Any) -> None:
    road = await _case(session, wib(9), category_code="JALAN_RUSAK")
    await _case(session, wib(9), category_code="SAMPAH")
    _resolve(road, wib(10))
    await session.flush()
    result = await _stats(
        graphql, "CATEGORY", wib(1), wib(1, month=4), filter={"dinasCodes": ["DBMSDA"]}
    )
    assert [(g["key"], g["received"], g["resolved"]) for g in result["groups"]] == [
        ("JALAN_RUSAK", 1, 1)
    ]


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("2026-03-10T00:00:00+07:00", "2026-03-09T00:00:00+07:00", "to"),
        ("2026-03-10T00:00:00+07:00", "2026-03-10T00:00:00+07:00", "to"),
        ("2016-01-01T00:00:00+07:00", "2026-01-01T00:00:00+07:00", "to"),
    ],
)
async def test_a_bad_range_is_refused(graphql: Any, start: str, end: str, field: str) -> None:
    body = await graphql(CASE_STATS, {"groupBy": "DAY", "from": start, "to": end})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith(f"{field}: ")


async def test_naive_times_are_refused(session: AsyncSession) -> None:
    with pytest.raises(ValidationFailed, match="time zone"):
        await case_stats(
            session=session,
            group_by=StatsGroup.DAY,
            case_filter=CaseFilter(),
            scope=true(),
            start=datetime(2026, 3, 1),
            end=datetime(2026, 3, 2),
            now=datetime.now(UTC),
        )


async def test_statistics_need_a_sign_in_and_count_only_the_callers_cases(
    session: AsyncSession, graphql: Any
) -> None:
    await _case(session, wib(9), category_code="JALAN_RUSAK")  # DBMSDA
    await _case(session, wib(9), category_code="SAMPAH")  # DLH
    await session.flush()
    variables = {
        "groupBy": "DINAS",
        "from": wib(1).isoformat(),
        "to": wib(1, month=4).isoformat(),
    }
    anonymous = await graphql(CASE_STATS, variables, as_=None)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    dlh = await graphql(CASE_STATS, variables, as_="DINAS_HEAD:DLH")
    assert "errors" not in dlh, dlh
    assert [(g["key"], g["received"]) for g in dlh["data"]["caseStats"]["groups"]] == [("DLH", 1)]
    assert dlh["data"]["caseStats"]["total"]["received"] == 1
    for query in (
        "{ caseBacklog(groupBy: DINAS) { key } }",
        "{ overdueCases { ticket } }",
        "{ heatmap(bbox: {west: 106.9, south: -6.4, east: 107.0, north: -6.2}, cellM: 500) }",
    ):
        refused = await graphql(query, as_=None)
        assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", query


# -- backlog and overdue list -------------------------------------------------------------


async def test_backlog_counts_every_open_case_and_lists_the_most_overdue(
    session: AsyncSession, graphql: Any
) -> None:
    now = datetime.now(UTC)
    old = await _case(session, now - timedelta(days=60), category_code="SAMPAH")
    older = await _case(session, now - timedelta(days=90), category_code="SAMPAH")
    fresh = await _case(session, now, category_code="JALAN_RUSAK")
    done = await _case(session, now - timedelta(days=120), category_code="SAMPAH")
    _resolve(done, now - timedelta(days=100))
    await session.flush()
    body = await graphql(
        """{ caseBacklog(groupBy: DINAS) { key label open overdue oldestDueAt }
             overdueCases(first: 5) { ticket overdue } }"""
    )
    assert "errors" not in body, body
    backlog = body["data"]["caseBacklog"]
    assert [(g["key"], g["open"], g["overdue"]) for g in backlog] == [
        ("DLH", 2, 2),
        ("DBMSDA", 1, 0),
    ]
    assert [c["ticket"] for c in body["data"]["overdueCases"]] == [older.ticket, old.ticket]
    assert fresh.ticket not in {c["ticket"] for c in body["data"]["overdueCases"]}


# -- heatmap ----------------------------------------------------------------------------------


def test_utm_zone_of_bekasi_is_48_south() -> None:
    assert utm_srid(107.0, -6.25) == 32748
    assert utm_srid(98.7, 3.6) == 32647  # Medan, north of the equator


def test_projection_is_utm_zone_48_south_over_the_city() -> None:
    grid = HexGrid.for_bbox(BEKASI, 250.0)
    assert grid.srid == 32748
    xs, ys = grid.project(np.array([107.0]), np.array([-6.25]))
    assert xs[0] == pytest.approx(720_600, abs=2_000)
    assert ys[0] == pytest.approx(9_308_800, abs=2_000)


@pytest.mark.parametrize(
    ("bbox", "cell_m", "field"),
    [
        (BEKASI, 49.0, "cellM"),
        (BEKASI, 5_001.0, "cellM"),
        (BEKASI, float("nan"), "cellM"),
        (BEKASI, 50.0, "bbox"),  # about 70,000 cells of 50 m
        (BBox(95.0, -11.0, 141.0, 6.0), 5_000.0, "bbox"),  # the whole country
        (BBox(107.0, -6.2, 106.9, -6.3), 500.0, "bbox"),  # reversed
    ],
)
def test_silly_heatmap_requests_are_refused(bbox: BBox, cell_m: float, field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        HexGrid.for_bbox(bbox, cell_m)
    assert refused.value.problems[0].field.startswith(field)


async def test_python_cell_of_agrees_with_postgis_hexagons(session: AsyncSession) -> None:
    grid = HexGrid.for_bbox(BEKASI, 100.0)
    rng = random.Random(3)
    points = [
        (rng.uniform(BEKASI.west, BEKASI.east), rng.uniform(BEKASI.south, BEKASI.north))
        for _ in range(300)
    ]
    for lon, lat in points:
        xs, ys = grid.project(np.array([lon]), np.array([lat]))
        i, j = grid.cell_of(xs[0], ys[0])
        inside = await session.scalar(
            select(
                ST_Intersects(
                    ST_SetSRID(func.ST_Hexagon(100.0, i, j), 32748),
                    ST_Transform(ST_SetSRID(ST_MakePoint(lon, lat), 4326), 32748),
                )
            )
        )
        assert inside, (lon, lat, i, j)


async def test_outlines_are_the_postgis_hexagons(session: AsyncSession) -> None:
    grid = HexGrid.for_bbox(BEKASI, 250.0)
    cells = np.array([[4750, 53738], [2881, 32233], [2882, 32233], [2883, 32240]])
    rings = grid.outlines(cells[:, 0], cells[:, 1])
    for (i, j), ring in zip(cells.tolist(), rings, strict=True):
        expected = (
            await session.execute(
                select(
                    func.ST_AsGeoJSON(
                        ST_Transform(ST_SetSRID(func.ST_Hexagon(250.0, i, j), 32748), 4326), 9
                    )
                )
            )
        ).scalar_one()
        coordinates = json.loads(expected)["coordinates"][0]
        assert np.allclose(ring, coordinates, atol=1e-9, rtol=0), (i, j)


HEATMAP = """
query Heat($bbox: BBoxInput!, $cellM: Float!, $filter: CaseFilterInput) {
  heatmap(bbox: $bbox, cellM: $cellM, filter: $filter)
}
"""


async def test_heatmap_counts_each_case_once_in_the_postgis_hexagon_holding_it(
    session: AsyncSession, graphql: Any, shared_data_dir: Path
) -> None:
    created = await _cases_across_kelurahan(session, shared_data_dir, seed=11, kelurahan=12, each=3)
    bbox = {"west": BEKASI.west, "south": BEKASI.south, "east": BEKASI.east, "north": BEKASI.north}
    body = await graphql(HEATMAP, {"bbox": bbox, "cellM": 300.0})
    assert "errors" not in body, body
    collection = body["data"]["heatmap"]
    assert collection["type"] == "FeatureCollection"
    features = collection["features"]
    assert sum(f["properties"]["count"] for f in features) == len(created)
    assert all(f["geometry"]["type"] == "Polygon" for f in features)
    assert all(len(f["geometry"]["coordinates"][0]) == 7 for f in features)

    # Each case lies in the hexagon of its cell, by PostGIS's own test in UTM.
    by_cell = {f["id"]: f["properties"]["count"] for f in features}
    expected: dict[str, int] = {}
    grid = HexGrid.for_bbox(BEKASI, 300.0)
    for case in created:
        row = (
            await session.execute(
                select(
                    func.ST_X(ST_Transform(Case.location, 32748)),
                    func.ST_Y(ST_Transform(Case.location, 32748)),
                ).where(Case.id == case.id)
            )
        ).one()
        i, j = grid.cell_of(row[0], row[1])
        inside = await session.scalar(
            select(
                ST_Intersects(
                    ST_SetSRID(func.ST_Hexagon(300.0, i, j), 32748),
                    ST_Transform(Case.location, 32748),
                )
            ).where(Case.id == case.id)
        )
        assert inside
        expected[f"{i}:{j}"] = expected.get(f"{i}:{j}", 0) + 1
    assert by_cell == expected

    # The filter applies: nothing was created in April.
    body = await graphql(
        HEATMAP,
        {"bbox": bbox, "cellM": 300.0, "filter": {"createdFrom": wib(1, month=4).isoformat()}},
    )
    assert body["data"]["heatmap"]["features"] == []


async def test_a_box_centred_in_another_utm_zone_projects_in_the_query(
    session: AsyncSession, graphql: Any, shared_data_dir: Path
) -> None:
    # Centred east of 108°E: zone 49 south, not the stored zone 48 coordinates.
    wide = BBox(west=BEKASI.west, south=BEKASI.south, east=109.3, north=BEKASI.north)
    grid = HexGrid.for_bbox(wide, 2_000.0)
    assert grid.srid == 32749
    created = await _cases_across_kelurahan(session, shared_data_dir, seed=13, kelurahan=6, each=2)
    bbox = {"west": wide.west, "south": wide.south, "east": wide.east, "north": wide.north}
    body = await graphql(HEATMAP, {"bbox": bbox, "cellM": 2_000.0})
    assert "errors" not in body, body
    features = body["data"]["heatmap"]["features"]
    assert sum(f["properties"]["count"] for f in features) == len(created)
    for feature in features:
        i, j = (int(n) for n in feature["id"].split(":"))
        inside = await session.scalar(
            select(func.count()).where(
                Case.id.in_([c.id for c in created]),
                ST_Intersects(
                    ST_SetSRID(func.ST_Hexagon(2_000.0, i, j), 32749),
                    ST_Transform(Case.location, 32749),
                ),
            )
        )
        assert inside == feature["properties"]["count"], feature["id"]


async def test_heatmap_refusal_is_a_clear_error(graphql: Any) -> None:
    bbox = {"west": BEKASI.west, "south": BEKASI.south, "east": BEKASI.east, "north": BEKASI.north}
    body = await graphql(HEATMAP, {"bbox": bbox, "cellM": 10.0})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "cellM" in body["errors"][0]["message"]


# -- choropleth -----------------------------------------------------------------------------


async def test_choropleth_has_every_kelurahan_with_its_value(
    session: AsyncSession, graphql: Any, shared_data_dir: Path
) -> None:
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, "32.75.08.1001")
    first = await _case(session, wib(9), lat=lat, lon=lon, category_code="SAMPAH")
    await _case(session, wib(9), lat=lat, lon=lon, category_code="SAMPAH")
    _resolve(first, wib(10))
    await session.flush()
    query = """
    query Choro($metric: ChoroplethMetric!, $from: DateTime!, $to: DateTime!) {
      kelurahanChoropleth(metric: $metric, from: $from, to: $to, simplifyM: 20)
    }
    """
    span = {"from": wib(1).isoformat(), "to": wib(1, month=4).isoformat()}
    received = await graphql(query, {"metric": "RECEIVED", **span})
    assert "errors" not in received, received
    features = received["data"]["kelurahanChoropleth"]["features"]
    assert len(features) == len(bekasi.kelurahan_shapes(shared_data_dir))
    values = {f["properties"]["code"]: f["properties"]["value"] for f in features}
    assert values["32.75.08.1001"] == 2
    assert sum(values.values()) == 2
    one = next(f for f in features if f["properties"]["code"] == "32.75.08.1001")
    assert one["properties"]["name"]
    assert one["properties"]["kecamatan"]
    assert one["geometry"]["type"] in {"Polygon", "MultiPolygon"}

    share = await graphql(query, {"metric": "RESOLVED_ON_TIME_SHARE", **span})
    shares = {
        f["properties"]["code"]: f["properties"]["value"]
        for f in share["data"]["kelurahanChoropleth"]["features"]
    }
    assert shares["32.75.08.1001"] == 1.0
    assert shares["32.75.08.1002"] is None
    open_ = await graphql(query, {"metric": "OPEN", **span})
    opens = {
        f["properties"]["code"]: f["properties"]["value"]
        for f in open_["data"]["kelurahanChoropleth"]["features"]
    }
    assert opens["32.75.08.1001"] == 1
    assert opens["32.75.08.1002"] == 0


async def test_a_range_without_cases_gives_zeros(graphql: Any) -> None:
    result = await _stats(graphql, "DINAS", wib(1, month=1), wib(2, month=1))
    assert result["groups"] == []
    assert result["total"]["received"] == 0
    assert result["total"]["onTimeShare"] is None
    assert result["total"]["medianHoursToResolve"] is None
