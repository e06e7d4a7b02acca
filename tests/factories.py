"""Test data builders for reports."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models import Case

_keys = itertools.count(1)


def report_input(**overrides: Any) -> dict[str, Any]:
    """A valid submitReport input (GraphQL variables), a LAPORAN about a pothole."""
    base: dict[str, Any] = {
        "source": "POT",
        "kind": "LAPORAN",
        "categoryCode": "JALAN_RUSAK",
        "title": "Jalan berlubang di depan sekolah",
        "description": "Lubang besar, berbahaya untuk pengendara motor saat hujan.",
        "location": {"lat": -6.2383, "lon": 106.9756},
        "mediaUrls": ["https://media.pot.example/foto/1.jpg"],
        "reporter": {"name": "Siti Aminah", "phone": "0812-3456-7890", "email": "siti@example.id"},
        "idempotencyKey": f"test-{next(_keys)}",
    }
    base.update(overrides)
    return base


SUBMIT = """
mutation Submit($input: SubmitReportInput!) {
  submitReport(input: $input) {
    __typename
    ... on Case {
      ticket kind source status statusLabel title dueAt overdue createdAt
      location { lat lon geojson }
      kelurahan { code name } kecamatan { code name }
      dinas { code shortName } category { code }
      routing { snapped distanceM reason rule { id } boundarySet { id } }
      history { type actor details }
    }
    ... on ValidationError { message fields { field message } }
    ... on OutsideJurisdiction { distanceM message nearestKelurahan { code } }
    ... on UnknownCategory { categoryCode message }
    ... on IdempotencyConflict { ticket message }
  }
}
"""


async def make_case(
    session: Any, *, lat: float = -6.2383, lon: float = 106.9756, **overrides: Any
) -> Case:
    """Create a case through the domain (no HTTP), returning the Case model."""
    from datetime import UTC, datetime

    from domain.intake import submit_report
    from domain.report_input import ReporterInput

    values: dict[str, Any] = {
        "reporter": ReporterInput(
            name="Siti Aminah", phone="0812-3456-7890", email="siti@example.id"
        ),
        "idempotency_key": f"factory-{next(_keys)}",
    }
    now = overrides.pop("now", None) or datetime.now(UTC)
    values.update(overrides)
    submitted = await submit_report(
        session=session,
        report=domain_report(lat=lat, lon=lon, **values),
        now=now,
        snap_tolerance_m=50,
    )
    return submitted.case


def domain_report(*, lat: float, lon: float, **overrides: Any) -> Any:
    """A valid pothole report from POT at the point, as the domain takes it."""
    from domain.report_input import ReportInput

    values: dict[str, Any] = {
        "source": "POT",
        "kind": "LAPORAN",
        "category_code": "JALAN_RUSAK",
        "title": "Jalan berlubang",
        "description": "Lubang di jalan",
        "location": (lat, lon),
        "kelurahan_code": None,
        "address": None,
        "occurred_at": None,
        "media_urls": [],
        "reporter": None,
        "anonymous": False,
        "confidential": False,
        "external_id": None,
        "idempotency_key": None,
    }
    values.update(overrides)
    return ReportInput(**values)
