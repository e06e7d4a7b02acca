from models.base import Base
from models.boundaries import BoundarySet, Kecamatan, Kelurahan, KelurahanPiece
from models.cases import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    RUNNING_STATUSES,
    Case,
    CaseEvent,
    CaseStatus,
    CaseSupport,
    EventType,
    RejectionReason,
    TicketCounter,
)
from models.personal_data import PersonalDataAccess, ReporterErasure
from models.reference import (
    KELURAHAN_OFFICE_CODE,
    Category,
    Dinas,
    Holiday,
    Partner,
    PartnerKey,
    ReportKind,
    RoutingRule,
)
from models.stats import CaseStatsDay, CaseStatsRollup

__all__ = [
    "FINAL_STATUSES",
    "KELURAHAN_OFFICE_CODE",
    "OPEN_STATUSES",
    "RUNNING_STATUSES",
    "Base",
    "BoundarySet",
    "Case",
    "CaseEvent",
    "CaseStatsDay",
    "CaseStatsRollup",
    "CaseStatus",
    "CaseSupport",
    "Category",
    "Dinas",
    "EventType",
    "Holiday",
    "Kecamatan",
    "Kelurahan",
    "KelurahanPiece",
    "Partner",
    "PartnerKey",
    "PersonalDataAccess",
    "RejectionReason",
    "ReportKind",
    "ReporterErasure",
    "RoutingRule",
    "TicketCounter",
]
