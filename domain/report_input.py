"""Validation and normalisation of a submitted report, before anything is stored.

Every problem is collected, never just the first, so that a reporting app can
show them all at once. Field paths are those of the GraphQL input (camelCase).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from core.errors import FieldProblem, ValidationFailed
from domain.working_days import JAKARTA
from geo.coordinates import LatLon, validate_lat_lon
from models.reference import ReportKind

MAX_TITLE = 200
MAX_DESCRIPTION = 5_000
MAX_ADDRESS = 500
MAX_EXTERNAL_ID = 100
MAX_IDEMPOTENCY_KEY = 128
MAX_REPORTER_NAME = 200
MAX_MEDIA_URLS = 10
MAX_MEDIA_URL = 2_000
# The widths of the columns these values are stored in.
MAX_SOURCE = 32
MAX_CATEGORY_CODE = 64
MAX_KELURAHAN_CODE = 32

CLOCK_SKEW = timedelta(minutes=5)
EARLIEST_OCCURRED_AT = datetime(2000, 1, 1, tzinfo=JAKARTA)

_IDEMPOTENCY_KEY_CHAR = re.compile(r"[A-Za-z0-9._:-]")
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]+")
# Unicode category Cc, which by Unicode's stability policy never changes: C0, DEL and C1.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MULTILINE_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_PHONE_SEPARATORS = re.compile(r"[ \u00a0\-.()]")
_BAD_PHONE = "not an Indonesian mobile number (use 08…, +628… or 628…)"
_MULTILINE_CONTROLS = frozenset("\n\r\t")
_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


@dataclass(frozen=True)
class ReporterInput:
    name: str | None
    phone: str | None
    email: str | None


@dataclass(frozen=True)
class ReportInput:
    """A report as received, before any checks."""

    source: str
    kind: str
    category_code: str
    title: str
    description: str
    location: tuple[float, float] | None  # (lat, lon)
    kelurahan_code: str | None
    address: str | None
    occurred_at: datetime | None
    media_urls: list[str]
    reporter: ReporterInput | None
    anonymous: bool
    confidential: bool
    external_id: str | None
    idempotency_key: str


@dataclass(frozen=True)
class CleanReport:
    """A report that passed every check, in normal form.

    Text is stripped and in Unicode NFC, line breaks are `\\n`, `occurred_at` is
    in UTC, the phone is E.164 (`+6281234567890`), the e-mail is as
    email-validator normalises it (domain lower-cased). Blank optional text is
    absent (None).
    """

    source: str
    kind: ReportKind
    category_code: str
    title: str
    description: str
    location: LatLon | None
    kelurahan_code: str | None
    address: str | None
    occurred_at: datetime | None
    media_urls: tuple[str, ...]
    reporter_name: str | None
    reporter_phone: str | None
    reporter_email: str | None
    anonymous: bool
    confidential: bool
    external_id: str | None
    idempotency_key: str

    def fingerprint(self) -> str:
        """SHA-256 (hex) of a canonical JSON of every field but the idempotency key.

        A retry with the same key must carry the same fingerprint. It is taken
        from the cleaned values, so whitespace around the title or another UTC
        offset for the same `occurred_at` does not change it.
        """
        # What dataclasses.asdict gives, without its deep copies: stored
        # fingerprints must keep matching retries.
        content: dict[str, object] = {
            field.name: getattr(self, field.name) for field in _FINGERPRINTED
        }
        if self.location is not None:
            content["location"] = {"lat": self.location.lat, "lon": self.location.lon}
        content["media_urls"] = list(self.media_urls)
        canonical = json.dumps(
            content,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=_json_value,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


_FINGERPRINTED = tuple(
    field for field in dataclasses.fields(CleanReport) if field.name != "idempotency_key"
)


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"no canonical JSON form for {type(value).__name__}")


def clean_report(raw: ReportInput, *, now: datetime) -> CleanReport:
    """Check and normalise `raw`; raise ValidationFailed listing every problem."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    problems: list[FieldProblem] = []

    source = _code(raw.source, "source", MAX_SOURCE, problems, required=True)
    kind = _kind(raw.kind, problems)
    category_code = _code(
        raw.category_code, "categoryCode", MAX_CATEGORY_CODE, problems, required=True
    )
    title = _text(raw.title, "title", MAX_TITLE, problems, multiline=False, required=True)
    description = _text(
        raw.description, "description", MAX_DESCRIPTION, problems, multiline=True, required=True
    )
    address = _text(raw.address, "address", MAX_ADDRESS, problems, multiline=True)
    kelurahan_code = _code(raw.kelurahan_code, "kelurahanCode", MAX_KELURAHAN_CODE, problems)
    location = _location(raw.location, problems)
    _placement(kind, raw.location is not None, kelurahan_code is not None, problems)
    occurred_at = _occurred_at(raw.occurred_at, now, problems)
    media_urls = _media_urls(raw.media_urls, problems)
    reporter = raw.reporter or ReporterInput(name=None, phone=None, email=None)
    reporter_name = _text(
        reporter.name, "reporter.name", MAX_REPORTER_NAME, problems, multiline=False
    )
    reporter_phone = _phone(reporter.phone, problems)
    reporter_email = _email(reporter.email, problems)
    external_id = _code(raw.external_id, "externalId", MAX_EXTERNAL_ID, problems)
    idempotency_key = _idempotency_key(raw.idempotency_key, problems)

    if problems:
        raise ValidationFailed(problems)
    # Every required value is known to be present once there are no problems.
    assert source is not None and kind is not None and category_code is not None
    assert title is not None and description is not None and idempotency_key is not None
    return CleanReport(
        source=source,
        kind=kind,
        category_code=category_code,
        title=title,
        description=description,
        location=location,
        kelurahan_code=kelurahan_code,
        address=address,
        occurred_at=occurred_at,
        media_urls=media_urls,
        reporter_name=reporter_name,
        reporter_phone=reporter_phone,
        reporter_email=reporter_email,
        anonymous=raw.anonymous,
        confidential=raw.confidential,
        external_id=external_id,
        idempotency_key=idempotency_key,
    )


def _control_character(value: str, *, multiline: bool) -> str | None:
    """A message naming the first forbidden control character in `value`, if any."""
    found = (_MULTILINE_FORBIDDEN if multiline else _CONTROL).search(value)
    if found is None:
        return None
    if found.group() == "\0":
        # Said on its own: PostgreSQL text cannot hold it at all.
        return "contains a NUL character (U+0000)"
    return f"contains a control character U+{ord(found.group()):04X}"


def _stripped(
    value: str | None,
    field: str,
    problems: list[FieldProblem],
    *,
    required: bool,
    multiline: bool = False,
) -> str | None:
    """`value` stripped, None when blank; records a missing or control character."""
    # Stripping first: a newline pasted after a title is not worth an error.
    stripped = value.strip() if value is not None else ""
    if not stripped:
        if required:
            problems.append(FieldProblem(field, "is required"))
        return None
    control = _control_character(stripped, multiline=multiline)
    if control:
        problems.append(FieldProblem(field, control))
        return None
    return stripped


def _too_long(value: str, field: str, limit: int, problems: list[FieldProblem]) -> bool:
    if len(value) > limit:
        problems.append(
            FieldProblem(field, f"must be at most {limit:,} characters (got {len(value):,})")
        )
        return True
    return False


def _code(
    value: str | None,
    field: str,
    limit: int,
    problems: list[FieldProblem],
    *,
    required: bool = False,
) -> str | None:
    stripped = _stripped(value, field, problems, required=required)
    if stripped is None or _too_long(stripped, field, limit, problems):
        return None
    return stripped


def _text(
    value: str | None,
    field: str,
    limit: int,
    problems: list[FieldProblem],
    *,
    multiline: bool,
    required: bool = False,
) -> str | None:
    stripped = _stripped(value, field, problems, required=required, multiline=multiline)
    if stripped is None:
        return None
    # Browsers send textarea line breaks as CRLF, apps as LF: the same text
    # must have the same length and the same fingerprint.
    text = unicodedata.normalize("NFC", stripped.replace("\r\n", "\n").replace("\r", "\n"))
    if _too_long(text, field, limit, problems):
        return None
    return text


def _kind(value: str, problems: list[FieldProblem]) -> ReportKind | None:
    stripped = _stripped(value, "kind", problems, required=True)
    if stripped is None:
        return None
    try:
        return ReportKind(stripped)
    except ValueError:
        problems.append(FieldProblem("kind", "must be LAPORAN, ASPIRASI or INFORMASI"))
        return None


def _location(value: tuple[float, float] | None, problems: list[FieldProblem]) -> LatLon | None:
    if value is None:
        return None
    lat, lon = value
    try:
        return validate_lat_lon(lat, lon, prefix="location.")
    except ValidationFailed as failed:
        problems.extend(failed.problems)
        return None


def _placement(
    kind: ReportKind | None,
    has_location: bool,
    has_kelurahan: bool,
    problems: list[FieldProblem],
) -> None:
    if kind is ReportKind.LAPORAN:
        if not has_location:
            problems.append(FieldProblem("location", "a LAPORAN needs a location"))
        if has_kelurahan:
            problems.append(
                FieldProblem(
                    "kelurahanCode",
                    "only for ASPIRASI or INFORMASI: a LAPORAN is placed by its location",
                )
            )
    elif has_location and has_kelurahan:
        message = "give either a location or a kelurahanCode, not both"
        problems.append(FieldProblem("location", message))
        problems.append(FieldProblem("kelurahanCode", message))


def _occurred_at(
    value: datetime | None, now: datetime, problems: list[FieldProblem]
) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        problems.append(FieldProblem("occurredAt", "must include a timezone offset (e.g. +07:00)"))
        return None
    if value > now + CLOCK_SKEW:
        problems.append(FieldProblem("occurredAt", "must not be in the future"))
        return None
    if value < EARLIEST_OCCURRED_AT:
        problems.append(FieldProblem("occurredAt", "must not be before 2000-01-01"))
        return None
    return value.astimezone(UTC)


def _media_urls(values: list[str], problems: list[FieldProblem]) -> tuple[str, ...]:
    if len(values) > MAX_MEDIA_URLS:
        problems.append(
            FieldProblem("mediaUrls", f"at most {MAX_MEDIA_URLS} media URLs (got {len(values)})")
        )
    cleaned: list[str] = []
    for index, value in enumerate(values):
        field = f"mediaUrls[{index}]"
        url = _stripped(value, field, problems, required=True)
        if url is None:
            continue
        message = _media_url_problem(url)
        if message:
            problems.append(FieldProblem(field, message))
        else:
            cleaned.append(url)
    return tuple(cleaned)


def _media_url_problem(url: str) -> str | None:
    if len(url) > MAX_MEDIA_URL:
        return f"must be at most {MAX_MEDIA_URL:,} characters (got {len(url):,})"
    if any(char.isspace() for char in url):
        return "must not contain spaces (percent-encode them as %20)"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        has_credentials = parts.username is not None or parts.password is not None
    except ValueError as error:
        return f"is not a valid URL ({error})"
    if parts.scheme.lower() != "https":
        return "must be an absolute https:// URL"
    if not host:
        return "must name a host (https://host/path)"
    if has_credentials:
        return "must not contain credentials (user:password@)"
    return None


def _phone(value: str | None, problems: list[FieldProblem]) -> str | None:
    field = "reporter.phone"
    stripped = _stripped(value, field, problems, required=False)
    if stripped is None:
        return None
    digits = _PHONE_SEPARATORS.sub("", stripped)
    national: str | None = None
    if digits.startswith("+62"):
        national = digits[3:]
    elif digits.startswith("62"):
        national = digits[2:]
    elif digits.startswith("0"):
        national = digits[1:]
    # Mobile numbers begin with 8 after the country code or the trunk 0; a
    # landline (021-…) cannot take the SMS or WhatsApp message of a follow-up.
    if national is None or not (
        national.isascii() and national.isdigit() and national.startswith("8")
    ):
        problems.append(FieldProblem(field, _BAD_PHONE))
        return None
    # Lengths and number ranges are phonenumbers' metadata for Indonesia.
    try:
        number = phonenumbers.parse(f"+62{national}")
    except phonenumbers.NumberParseException:
        problems.append(FieldProblem(field, _BAD_PHONE))
        return None
    if not phonenumbers.is_valid_number_for_region(number, "ID") or (
        phonenumbers.number_type(number) not in _MOBILE_TYPES
    ):
        problems.append(FieldProblem(field, _BAD_PHONE))
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email(value: str | None, problems: list[FieldProblem]) -> str | None:
    field = "reporter.email"
    stripped = _stripped(value, field, problems, required=False)
    if stripped is None:
        return None
    try:
        validated = validate_email(stripped, check_deliverability=False)
    except EmailNotValidError as error:
        problems.append(FieldProblem(field, f"not a valid e-mail address: {error}"))
        return None
    return validated.normalized


def _idempotency_key(value: str, problems: list[FieldProblem]) -> str | None:
    field = "idempotencyKey"
    key = _stripped(value, field, problems, required=True)
    if key is None:
        return None
    bad = (
        None
        if _IDEMPOTENCY_KEY.fullmatch(key)
        else next(char for char in key if not _IDEMPOTENCY_KEY_CHAR.fullmatch(char))
    )
    if bad is not None:
        problems.append(
            FieldProblem(
                field,
                f"contains {bad!r}: use only letters A-Z and a-z, digits, '.', '_', ':' and '-'",
            )
        )
        return None
    if _too_long(key, field, MAX_IDEMPOTENCY_KEY, problems):
        return None
    return key
