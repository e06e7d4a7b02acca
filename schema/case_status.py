"""Where a case stands and how far it was escalated, as the API names them."""

from __future__ import annotations

from enum import Enum

import strawberry

STATUS_LABELS = {
    "RECEIVED": "Diterima",
    "VERIFIED": "Diverifikasi",
    "IN_PROGRESS": "Ditindaklanjuti",
    "ON_HOLD": "Ditunda",
    "RESOLVED": "Selesai",
    "REOPENED": "Dibuka kembali",
    "CLOSED": "Ditutup",
    "REJECTED": "Ditolak",
    "DUPLICATE": "Duplikat",
}


@strawberry.enum(description="Where a case stands. `statusLabel` gives the Indonesian label.")
class CaseStatus(Enum):
    RECEIVED = "RECEIVED"
    VERIFIED = "VERIFIED"
    IN_PROGRESS = "IN_PROGRESS"
    ON_HOLD = "ON_HOLD"
    RESOLVED = "RESOLVED"
    REOPENED = "REOPENED"
    CLOSED = "CLOSED"
    REJECTED = "REJECTED"
    DUPLICATE = "DUPLICATE"


@strawberry.enum(description="How far an overdue case has been escalated (`ESCALATED` events).")
class EscalationLevel(Enum):
    NONE = strawberry.enum_value("NONE", description="Not escalated: on time, or not yet swept.")
    HANDLER = strawberry.enum_value(
        "HANDLER", description="Past its due time: escalated to the handling dinas or kelurahan."
    )
    POC = strawberry.enum_value(
        "POC", description="Still open long after its due time: escalated to the POC."
    )


# The stored level (models.cases: 0, 1, 2) as the API names it.
ESCALATION_LEVELS = (EscalationLevel.NONE, EscalationLevel.HANDLER, EscalationLevel.POC)
