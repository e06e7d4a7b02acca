"""Report intake through the GraphQL endpoint, on real PostGIS with the official boundaries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from models import Case, CaseEvent, Category, Dinas, RoutingRule
from tests import bekasi
from tests.conftest import wipe_committed_cases
from tests.factories import SUBMIT, report_input

pytestmark = pytest.mark.usefixtures("reference_data")


@pytest.fixture
def caller() -> str:
    return "partner:POT"


async def submit(graphql: Any, **overrides: Any) -> dict[str, Any]:
    body = await graphql(SUBMIT, {"input": report_input(**overrides)})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["submitReport"]
    return result


async def _count(session: AsyncSession, model: type[Any]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize(
    ("code", "category", "dinas"),
    [
        ("32.75.01.1001", "JALAN_RUSAK", "DBMSDA"),
        ("32.75.08.1002", "SAMPAH", "DLH"),
        ("32.75.11.1001", "PJU_MATI", "DISPERKIMTAN"),
        ("32.75.03.1004", "PARKIR_LIAR", "DISHUB"),
        ("32.75.07.1008", "KEBERSIHAN_LINGKUNGAN", "KELURAHAN"),
    ],
)
async def test_laporan_is_routed_to_its_kelurahan_and_dinas(
    graphql: Any, shared_data_dir: Path, code: str, category: str, dinas: str
) -> None:
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, code)
    case = await submit(graphql, categoryCode=category, location={"lat": lat, "lon": lon})
    assert case["__typename"] == "Case", case
    assert case["kelurahan"]["code"] == code
    assert case["kecamatan"]["code"] == code[:8]
    assert case["dinas"]["code"] == dinas
    assert case["status"] == "RECEIVED" and case["statusLabel"] == "Diterima"
    assert case["routing"]["snapped"] is False
    assert case["routing"]["reason"] == f"default dinas of category {category}"
    assert case["location"]["geojson"] == {"type": "Point", "coordinates": [lon, lat]}
    assert [e["type"] for e in case["history"]] == ["CREATED", "ROUTED"]
    assert case["history"][1]["details"]["kelurahan"] == code
    now = datetime.now(UTC)
    assert (
        case["ticket"]
        == f"BKS-{now.astimezone(bekasi_tz()).strftime('%y%m')}-" + case["ticket"].rsplit("-", 1)[1]
    )
    assert len(case["ticket"].rsplit("-", 1)[1]) == 6


def bekasi_tz() -> Any:
    from domain.working_days import JAKARTA

    return JAKARTA


async def test_tickets_are_sequential(graphql: Any) -> None:
    first = await submit(graphql)
    second = await submit(graphql)
    number = int(first["ticket"].rsplit("-", 1)[1])
    assert second["ticket"] == f"{first['ticket'].rsplit('-', 1)[0]}-{number + 1:06d}"


async def test_routing_rule_overrides_the_default_in_one_kecamatan_only(
    graphql: Any, session: AsyncSession, shared_data_dir: Path
) -> None:
    category_id = await session.scalar(select(Category.id).where(Category.code == "JALAN_RUSAK"))
    dishub = await session.scalar(select(Dinas.id).where(Dinas.code == "DISHUB"))
    rule = RoutingRule(
        category_id=category_id,
        dinas_id=dishub,
        priority=10,
        description="jalan nasional Kalimalang",
        kecamatan_codes=["32.75.08"],
        kelurahan_codes=[],
    )
    session.add(rule)
    await session.flush()

    lat, lon = bekasi.interior_lat_lon(shared_data_dir, "32.75.08.1003")
    inside = await submit(graphql, location={"lat": lat, "lon": lon})
    assert inside["dinas"]["code"] == "DISHUB"
    assert inside["routing"]["rule"] == {"id": str(rule.id)}
    assert "jalan nasional Kalimalang" in inside["routing"]["reason"]

    lat, lon = bekasi.interior_lat_lon(shared_data_dir, "32.75.09.1002")
    outside = await submit(graphql, location={"lat": lat, "lon": lon})
    assert outside["dinas"]["code"] == "DBMSDA"
    assert outside["routing"]["rule"] is None


async def test_point_in_a_gap_is_snapped_and_says_so(graphql: Any, shared_data_dir: Path) -> None:
    lat, lon = bekasi.to_lat_lon(bekasi.gap_points(shared_data_dir)[0])
    case = await submit(graphql, location={"lat": lat, "lon": lon})
    assert case["__typename"] == "Case"
    assert case["routing"]["snapped"] is True
    assert 0 < case["routing"]["distanceM"] <= 15


async def test_outside_the_city_is_refused_and_nothing_is_written(
    graphql: Any, session: AsyncSession
) -> None:
    before = await _count(session, Case)
    result = await submit(graphql, location={"lat": -6.1754, "lon": 106.8272})
    assert result["__typename"] == "OutsideJurisdiction"
    assert result["distanceM"] > 10_000
    assert result["nearestKelurahan"]["code"] == "32.75.08.1007"
    assert await _count(session, Case) == before


async def test_unknown_category(graphql: Any) -> None:
    result = await submit(graphql, categoryCode="TIDAK_ADA")
    assert result == {
        "__typename": "UnknownCategory",
        "categoryCode": "TIDAK_ADA",
        "message": "no active category has the code 'TIDAK_ADA'",
    }


async def test_aspirasi_may_name_a_kelurahan_or_be_city_wide(graphql: Any) -> None:
    by_code = await submit(
        graphql,
        kind="ASPIRASI",
        categoryCode="RENCANA_TATA_RUANG",
        location=None,
        kelurahanCode="32.75.04.1001",
    )
    assert by_code["kelurahan"]["code"] == "32.75.04.1001"
    assert by_code["location"] is None
    city_wide = await submit(
        graphql, kind="ASPIRASI", categoryCode="RENCANA_TATA_RUANG", location=None
    )
    assert city_wide["__typename"] == "Case"
    assert city_wide["kelurahan"] is None and city_wide["kecamatan"] is None


BAD_INPUTS = [
    ({"title": "   "}, "title"),
    ({"description": ""}, "description"),
    ({"title": "x" * 201}, "title"),
    ({"description": "x" * 5001}, "description"),
    ({"title": "Jalan\x07rusak"}, "title"),
    ({"location": {"lat": -95.0, "lon": 106.97}}, "location.lat"),
    ({"location": {"lat": 106.97, "lon": -6.24}}, "location.lat"),
    ({"location": None}, "location"),
    ({"kind": "INFORMASI"}, "categoryCode"),
    ({"categoryCode": "INFRASTRUKTUR"}, "categoryCode"),
    ({"mediaUrls": ["http://media.pot.example/1.jpg"]}, "mediaUrls[0]"),
    ({"mediaUrls": ["https://m.example/" + "a" * 2000]}, "mediaUrls[0]"),
    ({"mediaUrls": [f"https://m.example/{i}.jpg" for i in range(11)]}, "mediaUrls"),
    ({"reporter": {"phone": "021-1234567"}}, "reporter.phone"),
    ({"reporter": {"email": "siti@@example"}}, "reporter.email"),
    ({"occurredAt": "2099-01-01T00:00:00+07:00"}, "occurredAt"),
    ({"source": "WHATSAPP"}, "source"),
    (
        {
            "kelurahanCode": "32.75.99.9999",
            "kind": "ASPIRASI",
            "location": None,
            "categoryCode": "RENCANA_TATA_RUANG",
        },
        "kelurahanCode",
    ),
]


@pytest.mark.parametrize(("overrides", "field"), BAD_INPUTS)
async def test_bad_input_names_the_field_and_writes_nothing(
    graphql: Any, session: AsyncSession, overrides: dict[str, Any], field: str
) -> None:
    before = (await _count(session, Case), await _count(session, CaseEvent))
    result = await submit(graphql, **overrides)
    assert result["__typename"] == "ValidationError", result
    assert field in [f["field"] for f in result["fields"]], result
    assert all(f["message"] for f in result["fields"])
    assert (await _count(session, Case), await _count(session, CaseEvent)) == before


async def test_several_bad_fields_are_reported_together(graphql: Any) -> None:
    result = await submit(graphql, title="", description="x" * 5001, reporter={"phone": "12345"})
    fields = {f["field"] for f in result["fields"]}
    assert {"title", "description", "reporter.phone"} <= fields


async def test_phone_is_stored_in_one_normal_form_and_never_returned(
    graphql: Any, session: AsyncSession
) -> None:
    case = await submit(graphql, reporter={"name": "Budi", "phone": "+62 812 3456 7890"})
    stored = await session.scalar(select(Case).where(Case.ticket == case["ticket"]))
    assert stored is not None and stored.reporter_phone == "+6281234567890"
    body = await graphql(
        "query($t: String!) { case(ticket: $t) { ticket } }", {"t": case["ticket"]}
    )
    assert "6281234567890" not in str(body) and "Budi" not in str(body)


async def test_retry_with_the_same_key_returns_the_original_case(
    graphql: Any, session: AsyncSession
) -> None:
    payload = report_input(idempotencyKey="retry-1")
    first = (await graphql(SUBMIT, {"input": payload}))["data"]["submitReport"]
    second = (await graphql(SUBMIT, {"input": payload}))["data"]["submitReport"]
    assert second["ticket"] == first["ticket"]
    assert (
        await session.scalar(
            select(func.count()).select_from(Case).where(Case.idempotency_key == "retry-1")
        )
        == 1
    )

    changed = (
        await graphql(SUBMIT, {"input": {**payload, "description": "Berbeda sama sekali."}})
    )["data"]["submitReport"]
    assert changed["__typename"] == "IdempotencyConflict"
    assert changed["ticket"] == first["ticket"]
    assert "different payload" in changed["message"]


async def test_due_dates_skip_weekends_and_holidays(
    session: AsyncSession, shared_data_dir: Path
) -> None:
    from domain.intake import submit_report
    from domain.report_input import ReportInput
    from models import Holiday

    session.add(Holiday(day=datetime(2031, 3, 3).date(), name="test holiday (Monday)"))
    await session.flush()
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, "32.75.01.1002")
    friday_evening = datetime(2031, 2, 28, 20, 0, tzinfo=UTC)  # Saturday 03:00 in Jakarta
    thursday = datetime(2031, 2, 27, 3, 0, tzinfo=UTC)  # Thursday 10:00 in Jakarta
    sla = await session.scalar(
        select(Category.service_level_days).where(Category.code == "JALAN_RUSAK")
    )
    assert sla is not None

    async def due(now: datetime, key: str) -> datetime:
        raw = ReportInput(
            source="POT",
            kind="LAPORAN",
            category_code="JALAN_RUSAK",
            title="Jalan rusak",
            description="Berlubang",
            location=(lat, lon),
            kelurahan_code=None,
            address=None,
            occurred_at=None,
            media_urls=[],
            reporter=None,
            anonymous=False,
            confidential=False,
            external_id=None,
            idempotency_key=key,
        )
        submitted = await submit_report(session=session, report=raw, now=now, snap_tolerance_m=50)
        return submitted.case.due_at

    from domain.working_days import add_working_days

    holidays = {datetime(2031, 3, 3).date()}
    # Saturday (Jakarta) report: counting starts Monday, which is a holiday.
    expected_day = add_working_days(datetime(2031, 3, 1).date(), sla, holidays)
    got = (await due(friday_evening, "due-1")).astimezone(bekasi_tz())
    assert got.date() == expected_day + timedelta(days=1) and got.hour == 0
    assert expected_day.weekday() < 5 and expected_day != datetime(2031, 3, 3).date()
    # Independent check for the first working day: Thursday + 1 = Friday; + 2 skips the
    # weekend and the Monday holiday to Tuesday.
    assert add_working_days(thursday.date(), 2, holidays) == datetime(2031, 3, 4).date()
    got_thursday = (await due(thursday, "due-2")).astimezone(bekasi_tz())
    assert got_thursday.date() == add_working_days(thursday.date(), sla, holidays) + timedelta(
        days=1
    )


async def test_twenty_concurrent_retries_create_exactly_one_case(
    settings: Any, engine: AsyncEngine, committed_credentials: Any
) -> None:
    """Real commits on separate connections: cleaned up afterwards."""
    from asgi_lifespan import LifespanManager

    from api.app import create_app

    app = create_app(settings)
    payload = report_input(idempotencyKey="concurrent-20", source="SOROT")
    try:
        async with (
            LifespanManager(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://patriot.test"
            ) as client,
        ):
            responses = await asyncio.gather(
                *[
                    client.post(
                        "/graphql",
                        json={"query": SUBMIT, "variables": {"input": payload}},
                        headers=committed_credentials("partner:SOROT"),
                    )
                    for _ in range(20)
                ]
            )
            # The losers took a number and gave it back: the next report gets the next one.
            following = await client.post(
                "/graphql",
                json={
                    "query": SUBMIT,
                    "variables": {"input": {**payload, "idempotencyKey": "concurrent-next"}},
                },
                headers=committed_credentials("partner:SOROT"),
            )
        results = [r.json()["data"]["submitReport"] for r in responses]
        assert {r["__typename"] for r in results} == {"Case"}
        assert len({r["ticket"] for r in results}) == 1
        prefix, number = results[0]["ticket"].rsplit("-", 1)
        next_ticket = following.json()["data"]["submitReport"]["ticket"]
        assert next_ticket == f"{prefix}-{int(number) + 1:06d}"
        async with engine.connect() as conn:
            count = await conn.scalar(
                text("SELECT count(*) FROM \"case\" WHERE idempotency_key = 'concurrent-20'")
            )
        assert count == 1
    finally:
        await wipe_committed_cases(engine)


async def test_the_case_answered_is_the_case_as_stored(engine: AsyncEngine) -> None:
    """The case intake answers with, from its one write statement, holds every
    column as the ORM reads it back after the commit."""
    from geoalchemy2.shape import to_shape
    from sqlalchemy import inspect

    from domain.intake import submit_report
    from domain.reference_cache import ReferenceCache
    from domain.report_input import ReporterInput
    from tests.factories import domain_report

    report = domain_report(
        lat=-6.2383,
        lon=106.9756,
        idempotency_key="direct-write-1",
        reporter=ReporterInput(name="Siti Aminah", phone="0812-3456-7890", email=None),
        external_id="ext-9",
    )
    try:
        async with AsyncSession(bind=engine, expire_on_commit=False) as session, session.begin():
            submitted = await submit_report(
                session=session,
                report=report,
                now=datetime.now(UTC),
                snap_tolerance_m=50,
                reference=ReferenceCache(),
            )
            retried = await submit_report(
                session=session,
                report=report,
                now=datetime.now(UTC),
                snap_tolerance_m=50,
                reference=ReferenceCache(),
            )
        assert submitted.created and not retried.created
        assert retried.case.id == submitted.case.id
        async with AsyncSession(bind=engine) as session:
            stored = await session.get_one(Case, submitted.case.id)
            names = [attribute.key for attribute in inspect(Case).column_attrs]
            answered = {name: getattr(submitted.case, name) for name in names}
            read_back = {name: getattr(stored, name) for name in names}
        assert to_shape(answered.pop("location")).equals(to_shape(read_back.pop("location")))
        assert answered == read_back
        assert answered["ticket"].startswith("BKS-") and answered["external_id"] == "ext-9"
        assert isinstance(answered["routing_distance_m"], float)
        async with engine.connect() as conn:
            events = await conn.scalar(
                text("SELECT count(*) FROM case_event WHERE case_id = :id"),
                {"id": submitted.case.id},
            )
        assert events == 2  # CREATED and ROUTED, once
    finally:
        await wipe_committed_cases(engine)
