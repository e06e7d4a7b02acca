"""The one hierarchy of errors the domain raises on purpose.

Each maps to one GraphQL result type in `schema/errors.py`; anything else that
escapes a resolver is a bug and is masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


class PatriotError(Exception):
    """Base of every expected, user-facing failure."""


class ValidationFailed(PatriotError):
    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


class ImportRefused(PatriotError):
    """A boundary import plan with problems was handed over for writing; nothing was written."""

    def __init__(self, problems: Sequence[object]) -> None:
        self.problems = tuple(problems)
        details = "; ".join(str(problem) for problem in self.problems[:3])
        more = f" (and {len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        super().__init__(f"import refused, {len(self.problems)} problem(s): {details}{more}")


class NoActiveBoundarySet(PatriotError):
    def __init__(self) -> None:
        super().__init__("no boundary set is active: load seeds or import and activate boundaries")


class InvalidArguments(PatriotError):
    """The caller combined arguments in a way the API does not accept."""


class UnknownCategory(PatriotError):
    def __init__(self, code: str) -> None:
        super().__init__(f"no active category has the code {code!r}")
        self.code = code


class IdempotencyConflict(PatriotError):
    def __init__(self, *, source: str, idempotency_key: str, ticket: str) -> None:
        super().__init__(
            f"idempotency key {idempotency_key!r} of {source} was already used for case "
            f"{ticket} with a different payload; use a new key for a new report"
        )
        self.ticket = ticket


class OutsideJurisdiction(PatriotError):
    """The report's location is outside the city, beyond the snap tolerance."""

    def __init__(self, *, distance_m: float, nearest_kelurahan_id: int) -> None:
        super().__init__(f"the location is {distance_m / 1000:.2f} km outside Kota Bekasi")
        self.distance_m = distance_m
        self.nearest_kelurahan_id = nearest_kelurahan_id


class CaseNotFound(PatriotError):
    def __init__(self, ticket: str) -> None:
        super().__init__(f"no case has the ticket {ticket!r}")
        self.ticket = ticket


class InvalidTransition(PatriotError):
    """The case's status does not allow the action; `allowed` are the actions it does allow."""

    def __init__(
        self, *, ticket: str, status: str, attempted: str, allowed: Sequence[str], why: str = ""
    ) -> None:
        allowed_text = ", ".join(allowed) if allowed else "none"
        because = f" ({why})" if why else ""
        super().__init__(
            f"cannot {attempted} case {ticket}: it is {status}{because}; "
            f"allowed actions: {allowed_text}"
        )
        self.ticket = ticket
        self.status = status
        self.allowed = tuple(allowed)


class ReopenWindowClosed(PatriotError):
    """A resolved case may be disputed only within the reopen window after its resolution."""

    def __init__(
        self, *, ticket: str, resolved_at: datetime, reopenable_until: datetime, working_days: int
    ) -> None:
        super().__init__(
            f"case {ticket} can no longer be reopened: a resolution may be disputed within "
            f"{working_days} working days, until {reopenable_until.isoformat()}; "
            "submit a new report instead"
        )
        self.ticket = ticket
        self.resolved_at = resolved_at
        self.reopenable_until = reopenable_until


class CostLimitExceeded(PatriotError):
    def __init__(self, cost: int, limit: int) -> None:
        super().__init__(
            f"Operation cost {cost} exceeds the limit of {limit}; "
            "select fewer fields or ask for smaller pages."
        )
        self.cost = cost
        self.limit = limit


class ResponseTooLarge(PatriotError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"The response would be {size} bytes, over the limit of {limit}; "
            "select fewer fields or ask for smaller pages."
        )
        self.size = size
        self.limit = limit


class RateLimited(PatriotError):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"Too many mutations; retry after {retry_after_s} s.")
        self.retry_after_s = retry_after_s


class ServiceUnavailable(PatriotError):
    """The database cannot be reached (refused, lost, shut down, or no pooled
    connection in time): nothing was done, and the same request may succeed later."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"The service is temporarily unavailable; retry after {retry_after_s} s.")
        self.retry_after_s = retry_after_s


class HolidayCalendarMissing(PatriotError):
    """No holiday at all is known for a year a service level runs through: it
    would be read as a year without holidays and every due date would be wrong."""

    def __init__(self, year: int) -> None:
        super().__init__(
            f"no holidays are known for {year}: service levels cannot be computed; an "
            "administrator loads the national calendar (python -m seeds) or adds the "
            "year's holidays"
        )
        self.year = year
