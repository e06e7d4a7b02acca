"""Who may see and do what. One table of permissions; scope applied in queries.

Callers are anonymous, a partner app (API key, bound to one source) or staff
(a JWT whose claims carry a role and, for local roles, one area or dinas).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, false, select, true

from core.errors import PatriotError
from models import Case, Dinas


class Role(StrEnum):
    MAYOR = "MAYOR"
    POC_OPERATOR = "POC_OPERATOR"
    CAMAT = "CAMAT"
    LURAH = "LURAH"
    KELURAHAN_OFFICER = "KELURAHAN_OFFICER"
    DINAS_HEAD = "DINAS_HEAD"
    DINAS_OFFICER = "DINAS_OFFICER"
    ADMIN = "ADMIN"


CITY_WIDE = frozenset({Role.MAYOR, Role.POC_OPERATOR})
KECAMATAN_ROLES = frozenset({Role.CAMAT})
KELURAHAN_ROLES = frozenset({Role.LURAH, Role.KELURAHAN_OFFICER})
DINAS_ROLES = frozenset({Role.DINAS_HEAD, Role.DINAS_OFFICER})
HANDLERS = KELURAHAN_ROLES | DINAS_ROLES


class Action(StrEnum):
    """Everything a caller can ask to do to a case, beyond reading it."""

    SUBMIT = "SUBMIT"
    VERIFY = "VERIFY"
    HOLD = "HOLD"
    RESUME = "RESUME"
    REJECT = "REJECT"
    ASSIGN = "ASSIGN"
    REROUTE = "REROUTE"
    START = "START"
    RESOLVE = "RESOLVE"
    CLOSE = "CLOSE"
    REOPEN = "REOPEN"
    COMMENT = "COMMENT"
    MARK_DUPLICATE = "MARK_DUPLICATE"
    SUPPORT = "SUPPORT"
    RATE = "RATE"
    ADMINISTER = "ADMINISTER"  # reference data, boundary activation
    HIDE_REPORTER = "HIDE_REPORTER"
    ERASE_REPORTER = "ERASE_REPORTER"
    AUDIT_PERSONAL_DATA = "AUDIT_PERSONAL_DATA"  # who saw reporters, erasures


PARTNER = "PARTNER"

# The one permission table: which kinds of caller may take each action (always
# only on cases in their scope). Dinas and kelurahan handle cases; the POC
# oversees and is the only one that moves cases between dinas; the mayor and
# camat follow and comment; partners speak for their citizens.
PERMISSIONS: dict[Action, frozenset[str]] = {
    Action.SUBMIT: frozenset({PARTNER}),
    Action.VERIFY: frozenset({Role.POC_OPERATOR, *HANDLERS}),
    Action.HOLD: frozenset({Role.POC_OPERATOR, *HANDLERS}),
    Action.RESUME: frozenset({Role.POC_OPERATOR, *HANDLERS}),
    Action.REJECT: frozenset({Role.POC_OPERATOR, *HANDLERS}),
    Action.ASSIGN: frozenset({Role.POC_OPERATOR, Role.DINAS_HEAD, Role.LURAH}),
    Action.REROUTE: frozenset({Role.POC_OPERATOR, Role.ADMIN}),
    Action.START: frozenset({Role.POC_OPERATOR, *HANDLERS}),
    Action.RESOLVE: frozenset({Role.POC_OPERATOR, *HANDLERS}),
    Action.CLOSE: frozenset({Role.POC_OPERATOR, Role.DINAS_HEAD, Role.LURAH}),
    Action.REOPEN: frozenset({Role.POC_OPERATOR, PARTNER}),
    Action.COMMENT: frozenset({*CITY_WIDE, *KECAMATAN_ROLES, *HANDLERS}),
    Action.MARK_DUPLICATE: frozenset({Role.POC_OPERATOR, *HANDLERS}),
    Action.SUPPORT: frozenset({PARTNER}),
    Action.RATE: frozenset({PARTNER}),
    Action.ADMINISTER: frozenset({Role.ADMIN}),
    # The reporter's rights (UU No. 27/2022), used by the partner app the citizen
    # reported through, or by the POC on the citizen's behalf.
    Action.HIDE_REPORTER: frozenset({Role.POC_OPERATOR, PARTNER}),
    Action.ERASE_REPORTER: frozenset({Role.POC_OPERATOR, PARTNER}),
    Action.AUDIT_PERSONAL_DATA: frozenset({Role.ADMIN}),
}


class NotAuthenticated(PatriotError):
    def __init__(self, what: str = "this") -> None:
        super().__init__(f"sign in to use {what}: a staff token or a partner API key is required")


class Forbidden(PatriotError):
    pass


@dataclass(frozen=True)
class Principal:
    """The caller of one operation."""

    kind: str  # "anonymous", "partner" or "staff"
    subject: str  # as written to the event log
    role: Role | None = None
    partner_code: str | None = None
    kecamatan_code: str | None = None
    kelurahan_code: str | None = None
    dinas_code: str | None = None
    expires_at: float | None = None  # staff tokens: seconds since the epoch

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    @property
    def is_partner(self) -> bool:
        return self.kind == "partner"

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"

    @property
    def grant(self) -> str | None:
        if self.is_partner:
            return PARTNER
        return self.role.value if self.role else None

    def may(self, action: Action) -> bool:
        return self.grant is not None and self.grant in PERMISSIONS[action]

    def require(self, action: Action) -> None:
        if self.is_anonymous:
            raise NotAuthenticated(action.value.lower())
        if not self.may(action):
            raise Forbidden(f"{self.describe()} may not {action.value.lower().replace('_', ' ')}")

    def describe(self) -> str:
        if self.is_partner:
            return f"partner {self.partner_code}"
        if self.role in KECAMATAN_ROLES:
            return f"{self.role} of kecamatan {self.kecamatan_code}"
        if self.role in KELURAHAN_ROLES:
            return f"{self.role} of kelurahan {self.kelurahan_code}"
        if self.role in DINAS_ROLES:
            return f"{self.role} of {self.dinas_code}"
        return str(self.role or "an anonymous caller")


ANONYMOUS = Principal(kind="anonymous", subject="anonymous")
SYSTEM = Principal(kind="staff", subject="system", role=Role.POC_OPERATOR)


def case_scope(principal: Principal) -> ColumnElement[bool]:
    """The cases a caller may read in full, as a SQL condition on Case.

    A kelurahan officer sees every case located in the kelurahan, whichever
    dinas handles it; a dinas sees its own cases wherever they are.
    """
    if principal.is_partner:
        return Case.source == principal.partner_code
    if not principal.is_staff or principal.role is None:
        return false()
    if principal.role in CITY_WIDE or principal.role == Role.ADMIN:
        # Administrators read cases to reroute them; they never see reporters.
        return true()
    if principal.role in KECAMATAN_ROLES:
        return Case.kecamatan_code == principal.kecamatan_code
    if principal.role in KELURAHAN_ROLES:
        return Case.kelurahan_code == principal.kelurahan_code
    if principal.role in DINAS_ROLES:
        return Case.dinas_id.in_(select(Dinas.id).where(Dinas.code == principal.dinas_code))
    return false()


def public_scope() -> ColumnElement[bool]:
    """Cases anyone may see in the public view: all but confidential ones."""
    return Case.confidential.is_(False)


def may_see_reporter(principal: Principal, *, anonymous_report: bool) -> bool:
    """Reporter details, for a case already known to be in the caller's scope."""
    if anonymous_report:
        return principal.role == Role.POC_OPERATOR
    return principal.is_partner or (principal.is_staff and principal.role != Role.ADMIN)


def sees_case(
    principal: Principal,
    *,
    source: str,
    kecamatan_code: str | None,
    kelurahan_code: str | None,
    dinas_code: str,
) -> bool:
    """`case_scope` for one case already in memory (live feeds, nested cases)."""
    if principal.is_partner:
        return source == principal.partner_code
    if not principal.is_staff or principal.role is None:
        return False
    if principal.role in CITY_WIDE or principal.role == Role.ADMIN:
        return True
    if principal.role in KECAMATAN_ROLES:
        return kecamatan_code == principal.kecamatan_code
    if principal.role in KELURAHAN_ROLES:
        return kelurahan_code == principal.kelurahan_code
    if principal.role in DINAS_ROLES:
        return dinas_code == principal.dinas_code
    return False
