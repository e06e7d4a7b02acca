from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Annotated

import strawberry

from core import errors
from domain.access import Action, Forbidden
from domain.intake import Submitted, submit_report
from domain.report_input import ReporterInput as ReporterData
from domain.report_input import ReportInput
from geo.boundary_index import KecamatanRow, KelurahanRow
from models import Kecamatan as KecamatanModel
from models import Kelurahan as KelurahanModel
from schema.case import Case
from schema.case_filter import LatLonInput
from schema.case_view import case_for_caller
from schema.category import ReportKind
from schema.context import Context
from schema.errors import ValidationError
from schema.location import OutsideJurisdiction


@strawberry.input(description="Who reported. Personal data: never shown publicly.")
class ReporterInput:
    name: str | None = None
    phone: str | None = strawberry.field(
        default=None, description="Indonesian mobile number: 08…, +628… or 628…."
    )
    email: str | None = None


@strawberry.input
class SubmitReportInput:
    source: str = strawberry.field(
        description="The partner app: POT, SOROT, ...; must be the one the API key belongs to."
    )
    kind: ReportKind
    category_code: str
    title: str = strawberry.field(description="At most 200 characters.")
    description: str = strawberry.field(description="At most 5,000 characters.")
    location: LatLonInput | None = strawberry.field(
        default=None, description="Required for LAPORAN."
    )
    kelurahan_code: str | None = strawberry.field(
        default=None,
        description="For ASPIRASI and INFORMASI without a location; omit both for city-wide.",
    )
    address: str | None = None
    occurred_at: datetime | None = None
    media_urls: list[str] = strawberry.field(
        default_factory=list, description="https links, at most 10."
    )
    reporter: ReporterInput | None = None
    anonymous: bool = strawberry.field(
        default=False, description="Hide the reporter's identity from everyone but POC staff."
    )
    confidential: bool = strawberry.field(
        default=False, description="Keep the whole report out of public views."
    )
    external_id: str | None = strawberry.field(
        default=None, description="The partner's own id for this report."
    )
    idempotency_key: str = strawberry.field(
        description="Unique per report of this partner; a retry with the same key and payload "
        "returns the original case instead of creating another."
    )

    def to_domain(self) -> ReportInput:
        return ReportInput(
            source=self.source,
            kind=self.kind.value,
            category_code=self.category_code,
            title=self.title,
            description=self.description,
            location=(self.location.lat, self.location.lon) if self.location else None,
            kelurahan_code=self.kelurahan_code,
            address=self.address,
            occurred_at=self.occurred_at,
            media_urls=list(self.media_urls),
            reporter=ReporterData(
                name=self.reporter.name, phone=self.reporter.phone, email=self.reporter.email
            )
            if self.reporter
            else None,
            anonymous=self.anonymous,
            confidential=self.confidential,
            external_id=self.external_id,
            idempotency_key=self.idempotency_key,
        )


@strawberry.type(description="No active category has this code.")
class UnknownCategory:
    category_code: str
    message: str


@strawberry.type(
    description="The idempotency key was used before for a different report; nothing was written."
)
class IdempotencyConflict:
    message: str
    ticket: str = strawberry.field(description="The case the key already belongs to.")


SubmitReportResult = Annotated[
    Case | ValidationError | OutsideJurisdiction | UnknownCategory | IdempotencyConflict,
    strawberry.union("SubmitReportResult"),
]


@strawberry.type
class SubmitReportMutation:
    @strawberry.mutation(
        description="Take a report from a partner app: validate it, locate its kelurahan, route "
        "it to a dinas, number it and record it, all in one transaction."
    )
    async def submit_report(
        self,
        info: strawberry.Info[Context, None],
        input: SubmitReportInput,
    ) -> SubmitReportResult:
        principal = info.context.require(Action.SUBMIT)
        if input.source.strip().upper() != principal.partner_code:
            return ValidationError.from_exception(
                errors.ValidationFailed(
                    [
                        errors.FieldProblem(
                            "source",
                            f"this API key belongs to {principal.partner_code}; "
                            f"it cannot submit for {input.source!r}",
                        )
                    ]
                )
            )
        try:
            # A refusal is a normal result and the operation commits: intake
            # writes nothing before it is sure to write the whole case.
            async with info.context.db() as session:
                submitted = await submit_report(
                    session=session,
                    report=input.to_domain(),
                    now=datetime.now(UTC),
                    snap_tolerance_m=info.context.settings.snap_tolerance_m,
                    reference=info.context.services.intake_reference,
                    boundary_index=info.context.boundary_index,
                )
        except errors.ValidationFailed as error:
            return ValidationError.from_exception(error)
        except errors.UnknownCategory as error:
            return UnknownCategory(category_code=error.code, message=str(error))
        except errors.IdempotencyConflict as error:
            return IdempotencyConflict(message=str(error), ticket=error.ticket)
        except errors.OutsideJurisdiction as error:
            return OutsideJurisdiction(
                nearest_kelurahan_id=error.nearest_kelurahan_id,
                distance_m=round(error.distance_m, 1),
                message=str(error),
            )
        if submitted.created:
            _prime_loaders(info, submitted)
        # As every mutation, it answers with what the caller may see (a retry
        # returns an earlier case): here only ever the whole case.
        view = await case_for_caller(info, submitted.case)
        if not isinstance(view, Case):
            raise Forbidden(f"case {submitted.case.ticket} is outside the scope of the caller")
        return view


def _prime_loaders(info: strawberry.Info[Context, None], submitted: Submitted) -> None:
    """What intake already knows about the new case's places and dinas, so that
    answering reads nothing: the ticket counter stays locked until the commit."""
    loaders = info.context.loaders
    if submitted.dinas is not None:
        loaders.dinas.prime(submitted.dinas.id, submitted.dinas)
    index = info.context.boundary_index
    case = submitted.case
    if index is None or case.kelurahan_id is None or case.kecamatan_id is None:
        return
    kelurahan = index.kelurahan.get(case.kelurahan_id)
    kecamatan = index.kecamatan.get(case.kecamatan_id)
    if kelurahan is not None:
        loaders.kelurahan.prime(kelurahan.id, _kelurahan_model(kelurahan))
    if kecamatan is not None:
        loaders.kecamatan.prime(kecamatan.id, _kecamatan_model(kecamatan))


# One model per row of the boundary index, shared by every answer that names it
# (read only, as the reference cache's Dinas are): building two per submission
# cost more than answering with them. Keyed by the row's values, so a reloaded
# index can never get another set's model.
@functools.lru_cache(maxsize=1024)
def _kelurahan_model(row: KelurahanRow) -> KelurahanModel:
    return KelurahanModel(
        id=row.id,
        boundary_set_id=row.boundary_set_id,
        kecamatan_id=row.kecamatan_id,
        code=row.code,
        name=row.name,
        area_km2=row.area_km2,
    )


@functools.lru_cache(maxsize=256)
def _kecamatan_model(row: KecamatanRow) -> KecamatanModel:
    return KecamatanModel(
        id=row.id,
        boundary_set_id=row.boundary_set_id,
        code=row.code,
        name=row.name,
        area_km2=row.area_km2,
    )
