from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from core.errors import ValidationFailed
from domain.report_input import CleanReport, ReporterInput, ReportInput, clean_report
from domain.working_days import JAKARTA
from geo.coordinates import LatLon
from models.reference import ReportKind

NOW = datetime(2025, 3, 10, 9, 0, tzinfo=JAKARTA)
# 081234567890 in full-width digits, as some phone keyboards type them.
FULL_WIDTH_MOBILE = "".join(chr(0xFF10 + int(digit)) for digit in "081234567890")
REPORTER = ReporterInput(name="Budi Santoso", phone="0812-3456-7890", email="budi@example.com")


def raw(**changes: Any) -> ReportInput:
    """A valid LAPORAN, with `changes` applied."""
    report = ReportInput(
        source="POT",
        kind="LAPORAN",
        category_code="JALAN_RUSAK",
        title="Jalan berlubang di Jl. Ahmad Yani",
        description="Lubang besar di lajur kiri, sudah dua minggu.",
        location=(-6.2383, 106.9756),
        kelurahan_code=None,
        address="Jl. Ahmad Yani, depan Summarecon Mall",
        occurred_at=datetime(2025, 3, 9, 17, 30, tzinfo=JAKARTA),
        media_urls=["https://media.pot.bekasikota.go.id/a.jpg"],
        reporter=REPORTER,
        anonymous=False,
        confidential=False,
        external_id="POT-000123",
        idempotency_key="pot:2025-03-10:000123",
    )
    return dataclasses.replace(report, **changes)


def clean(**changes: Any) -> CleanReport:
    return clean_report(raw(**changes), now=NOW)


def problems(**changes: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as failed:
        clean(**changes)
    return [(p.field, p.message) for p in failed.value.problems]


def only_problem(**changes: Any) -> tuple[str, str]:
    found = problems(**changes)
    assert len(found) == 1, found
    return found[0]


def test_a_valid_report_is_normalised() -> None:
    report = clean(
        title="  Jalan berlubang  \n",
        description="Baris satu\r\nBaris dua\r\n",
        reporter=ReporterInput(name=" Budi ", phone="+62 812 3456 7890", email="Budi@Example.COM"),
        external_id="   ",
    )

    assert report.kind is ReportKind.LAPORAN
    assert report.title == "Jalan berlubang"
    assert report.description == "Baris satu\nBaris dua"
    assert report.location == LatLon(-6.2383, 106.9756)
    assert report.occurred_at == datetime(2025, 3, 9, 10, 30, tzinfo=UTC)
    assert report.occurred_at is not None and report.occurred_at.utcoffset() == timedelta(0)
    assert report.media_urls == ("https://media.pot.bekasikota.go.id/a.jpg",)
    assert (report.reporter_name, report.reporter_phone, report.reporter_email) == (
        "Budi",
        "+6281234567890",
        "Budi@example.com",
    )
    assert report.external_id is None
    assert report.idempotency_key == "pot:2025-03-10:000123"


def test_a_report_without_reporter_has_no_personal_data() -> None:
    report = clean(reporter=None)

    assert (report.reporter_name, report.reporter_phone, report.reporter_email) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("attribute", "field"),
    [
        ("source", "source"),
        ("kind", "kind"),
        ("category_code", "categoryCode"),
        ("title", "title"),
        ("description", "description"),
        ("idempotency_key", "idempotencyKey"),
    ],
)
def test_required_text_must_not_be_blank(attribute: str, field: str) -> None:
    assert only_problem(**{attribute: " \t\n "}) == (field, "is required")


def test_kind_must_be_one_of_the_three() -> None:
    field, message = only_problem(kind="PENGADUAN")

    assert field == "kind"
    assert "LAPORAN, ASPIRASI or INFORMASI" in message


@pytest.mark.parametrize(
    ("changes", "field", "limit"),
    [
        ({"title": "j" * 201}, "title", "200"),
        ({"description": "d" * 5_001}, "description", "5,000"),
        ({"address": "a" * 501}, "address", "500"),
        ({"external_id": "e" * 101}, "externalId", "100"),
        ({"idempotency_key": "k" * 129}, "idempotencyKey", "128"),
        (
            {"reporter": ReporterInput(name="n" * 201, phone=None, email=None)},
            "reporter.name",
            "200",
        ),
        ({"source": "s" * 33}, "source", "32"),
        ({"category_code": "c" * 65}, "categoryCode", "64"),
    ],
)
def test_text_longer_than_its_limit_is_refused(
    changes: dict[str, Any], field: str, limit: str
) -> None:
    found_field, message = only_problem(**changes)

    assert found_field == field
    assert f"at most {limit} characters" in message


def test_text_exactly_at_its_limit_is_accepted() -> None:
    report = clean(title="j" * 200, description="d" * 5_000, idempotency_key="k" * 128)

    assert len(report.title) == 200


def test_a_control_character_in_the_title_is_named() -> None:
    assert only_problem(title="Lampu\x07 mati") == ("title", "contains a control character U+0007")


def test_the_title_allows_no_line_break_inside() -> None:
    assert only_problem(title="Lampu\nmati") == ("title", "contains a control character U+000A")


def test_description_and_address_allow_line_breaks_and_tabs() -> None:
    report = clean(description="Satu\n\tDua\rTiga", address="Jl. Melati\nRT 01/RW 02")

    assert report.description == "Satu\n\tDua\nTiga"
    assert report.address == "Jl. Melati\nRT 01/RW 02"


def test_description_refuses_other_control_characters() -> None:
    assert only_problem(description="Rusak \x1b[31m") == (
        "description",
        "contains a control character U+001B",
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"address": "Jl. Melati\x00"}, "address"),
        ({"source": "PO\x00T"}, "source"),
        ({"description": "a\x00b"}, "description"),
    ],
)
def test_a_nul_character_is_refused_everywhere(changes: dict[str, Any], field: str) -> None:
    assert only_problem(**changes) == (field, "contains a NUL character (U+0000)")


def test_the_reporter_name_allows_no_control_character() -> None:
    reporter = ReporterInput(name="Budi\tSantoso", phone=None, email=None)

    assert only_problem(reporter=reporter) == (
        "reporter.name",
        "contains a control character U+0009",
    )


def test_a_laporan_needs_a_location() -> None:
    assert only_problem(location=None) == ("location", "a LAPORAN needs a location")


@pytest.mark.parametrize("kind", ["ASPIRASI", "INFORMASI"])
def test_other_kinds_may_have_a_location_a_kelurahan_or_neither(kind: str) -> None:
    assert clean(kind=kind, location=None).location is None
    assert clean(kind=kind).location == LatLon(-6.2383, 106.9756)
    placed = clean(kind=kind, location=None, kelurahan_code=" 32.75.01.1001 ")
    assert placed.kelurahan_code == "32.75.01.1001"


def test_location_and_kelurahan_code_are_mutually_exclusive() -> None:
    found = problems(kind="ASPIRASI", kelurahan_code="32.75.01.1001")

    assert [field for field, _ in found] == ["location", "kelurahanCode"]
    assert all("not both" in message for _, message in found)


def test_a_laporan_cannot_be_placed_by_kelurahan_code() -> None:
    field, message = only_problem(kelurahan_code="32.75.01.1001")

    assert field == "kelurahanCode"
    assert "only for ASPIRASI or INFORMASI" in message


def test_coordinates_out_of_range_name_the_coordinate() -> None:
    found = problems(location=(-95.0, 200.0))

    assert [field for field, _ in found] == ["location.lat", "location.lon"]


def test_swapped_coordinates_are_detected() -> None:
    field, message = only_problem(location=(106.9756, -6.2383))

    assert field == "location.lat"
    assert "swapped" in message


def test_a_non_finite_coordinate_is_refused() -> None:
    assert only_problem(location=(-6.2383, math.nan)) == (
        "location.lon",
        "longitude must be a finite number",
    )


def test_at_most_ten_media_urls() -> None:
    urls = [f"https://media.example.com/{i}.jpg" for i in range(11)]

    field, message = only_problem(media_urls=urls)

    assert field == "mediaUrls"
    assert "at most 10" in message


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://media.example.com/a.jpg", "https"),
        ("ftp://media.example.com/a.jpg", "https"),
        ("/uploads/a.jpg", "https"),
        ("media.example.com/a.jpg", "https"),
        ("https:///a.jpg", "host"),
        ("https://budi:rahasia@media.example.com/a.jpg", "credentials"),
        ("https://budi@media.example.com/a.jpg", "credentials"),
        ("https://media.example.com/" + "x" * 2_000, "at most 2,000 characters"),
        ("https://[::1/a.jpg", "not a valid URL"),
        ("https://media.example.com/foto saya.jpg", "spaces"),
        ("   ", "is required"),
    ],
)
def test_a_bad_media_url_is_named_by_its_index(url: str, fragment: str) -> None:
    urls = ["https://media.example.com/0.jpg", "https://media.example.com/1.jpg", url]

    field, message = only_problem(media_urls=urls)

    assert field == "mediaUrls[2]"
    assert fragment in message


def test_media_urls_are_stripped_and_keep_their_order() -> None:
    report = clean(media_urls=[" https://a.example.com/1.jpg", "HTTPS://b.example.com/2.jpg "])

    assert report.media_urls == ("https://a.example.com/1.jpg", "HTTPS://b.example.com/2.jpg")


@pytest.mark.parametrize(
    "phone",
    [
        "0812-3456-7890",
        "+62 812 3456 7890",
        "6281234567890",
        "081234567890",
        "(0812) 3456.7890",
        "+62-812-3456-7890",
    ],
)
def test_indonesian_mobile_numbers_become_e164(phone: str) -> None:
    report = clean(reporter=ReporterInput(name=None, phone=phone, email=None))

    assert report.reporter_phone == "+6281234567890"


@pytest.mark.parametrize(
    "phone",
    [
        "021-1234567",  # a Jakarta landline
        "+62 21 1234567",
        "0812345",  # too short
        "0812345678901234",  # too long
        "+1 650 253 0000",
        "812-3456-7890",  # no 0, 62 or +62
        "+62 0812 3456 7890",
        "0812/3456/7890",
        "08l2-3456-7890",
        FULL_WIDTH_MOBILE,
    ],
)
def test_other_phone_numbers_are_refused(phone: str) -> None:
    reporter = ReporterInput(name=None, phone=phone, email=None)

    field, message = only_problem(reporter=reporter)

    assert field == "reporter.phone"
    assert message == "not an Indonesian mobile number (use 08…, +628… or 628…)"


def test_the_email_is_stored_as_email_validator_normalises_it() -> None:
    reporter = ReporterInput(name=None, phone=None, email=" Warga.Bekasi@Example.COM ")

    assert clean(reporter=reporter).reporter_email == "Warga.Bekasi@example.com"


@pytest.mark.parametrize("email", ["budi@@example.com", "budi@localhost", "budi example.com"])
def test_a_bad_email_is_refused(email: str) -> None:
    field, message = only_problem(reporter=ReporterInput(name=None, phone=None, email=email))

    assert field == "reporter.email"
    assert message.startswith("not a valid e-mail address: ")


def test_occurred_at_must_carry_a_timezone() -> None:
    field, message = only_problem(occurred_at=datetime(2025, 3, 9, 17, 30))

    assert field == "occurredAt"
    assert "timezone" in message


def test_occurred_at_may_be_up_to_five_minutes_ahead_of_now() -> None:
    ahead = NOW + timedelta(minutes=4, seconds=59)

    assert clean(occurred_at=ahead).occurred_at == ahead


def test_occurred_at_in_the_future_is_refused() -> None:
    assert only_problem(occurred_at=NOW + timedelta(minutes=6)) == (
        "occurredAt",
        "must not be in the future",
    )


def test_occurred_at_before_2000_is_refused() -> None:
    field, message = only_problem(occurred_at=datetime(1999, 12, 31, 23, 0, tzinfo=JAKARTA))

    assert field == "occurredAt"
    assert "2000-01-01" in message


@pytest.mark.parametrize(
    ("key", "fragment"),
    [("pot 000123", "' '"), ("pot/000123", "'/'"), ("kunci-ñ", "'ñ'")],
)
def test_idempotency_key_characters(key: str, fragment: str) -> None:
    field, message = only_problem(idempotency_key=key)

    assert field == "idempotencyKey"
    assert fragment in message


def test_an_anonymous_report_keeps_its_reporter() -> None:
    report = clean(anonymous=True, confidential=True)

    assert report.anonymous and report.confidential
    assert report.reporter_phone == "+6281234567890"


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        source="",
        kind="LAPORAN",
        title="x" * 201,
        location=None,
        media_urls=["https://ok.example.com/a.jpg", "http://bad.example.com/b.jpg"],
        reporter=ReporterInput(name=None, phone="021-1234567", email="not-an-email"),
        occurred_at=datetime(2025, 3, 9),
        idempotency_key="bad key",
    )

    assert [field for field, _ in found] == [
        "source",
        "title",
        "location",
        "occurredAt",
        "mediaUrls[1]",
        "reporter.phone",
        "reporter.email",
        "idempotencyKey",
    ]


def test_the_validation_error_lists_every_problem_in_its_message() -> None:
    with pytest.raises(ValidationFailed, match=r"title: is required; location\.lat: "):
        clean(title="", location=(91.0, 100.0))


def test_the_fingerprint_ignores_whitespace_around_text() -> None:
    first = clean(title="Jalan berlubang", description="Lubang besar.")
    second = clean(title="  Jalan berlubang\n", description="Lubang besar.\r\n")

    assert first.fingerprint() == second.fingerprint()
    assert len(first.fingerprint()) == 64
    assert int(first.fingerprint(), 16) >= 0


def test_the_fingerprint_changes_with_the_description() -> None:
    first = clean(description="Lubang besar.")
    second = clean(description="Lubang kecil.")

    assert first.fingerprint() != second.fingerprint()


def test_the_fingerprint_ignores_the_idempotency_key_and_the_utc_offset() -> None:
    moment = datetime(2025, 3, 9, 10, 30, tzinfo=UTC)
    first = clean(idempotency_key="a", occurred_at=moment)
    second = clean(idempotency_key="b", occurred_at=moment.astimezone(timezone(timedelta(hours=7))))

    assert first.fingerprint() == second.fingerprint()


@pytest.mark.parametrize(
    "changes",
    [
        {"location": (-6.2384, 106.9756)},
        {"media_urls": []},
        {"anonymous": True},
        {"confidential": True},
        {"reporter": None},
        {"external_id": "POT-000124"},
        {"occurred_at": None},
    ],
)
def test_the_fingerprint_covers_every_other_field(changes: dict[str, Any]) -> None:
    assert clean(**changes).fingerprint() != clean().fingerprint()


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        clean_report(raw(), now=datetime(2025, 3, 10, 9, 0))
