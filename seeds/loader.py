"""Loading the seed data, step by step, in the caller's transaction.

Every step is idempotent: running the seeds again finds what an earlier run
wrote and adds nothing. Steps flush but never commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ImportRefused
from geo.importer import ImportOptions, ImportPlan, import_boundaries, plan_import
from geo.store import activate_boundary_set, active_boundary_set_id, find_by_content_hash
from seeds.reference import (
    REFERENCE_STEPS,
    CategoriesOutcome,
    DinasOutcome,
    HolidaysOutcome,
    PartnersOutcome,
)

DATA_DIR = Path(__file__).resolve().parent / "data"
KELURAHAN_FILE = DATA_DIR / "kelurahan.geojson"
KECAMATAN_FILE = DATA_DIR / "kecamatan.geojson"

BOUNDARY_SOURCE = (
    "Kemendagri kelurahan and kecamatan boundaries of Kota Bekasi (Kepmendagri"
    " 300.2.2-2430/2025), from github.com/cahyadsn/wilayah_boundaries"
    " db/kel/32/wilayah_boundaries_kel_32.75.sql at commit"
    " 3c5a7960f4d227a38489094d84252bdbb3f978a5 (MIT), shipped with Patriot in seeds/data"
)
BOUNDARY_ACCURACY_NOTE = (
    "Official codes, names and boundaries, simplified by the source (very probably from"
    " BIG's 1:10k village boundaries; vertices about 132 m apart). Each kelurahan was"
    " simplified on its own, so neighbours overlap or leave gaps in slivers up to about"
    " 11 m wide: a point in an overlap goes to the kelurahan it lies deepest in, a point"
    " in a gap to the nearest one (snapped)."
)


class StepOutcome(Protocol):
    @property
    def step(self) -> str: ...

    def describe(self) -> str: ...


class SeedStep(Protocol):
    async def __call__(self, *, session: AsyncSession) -> StepOutcome: ...


@dataclass(frozen=True)
class BoundariesOutcome:
    boundary_set_id: int
    created: bool
    activated: bool
    active_boundary_set_id: int

    @property
    def step(self) -> str:
        return "boundaries"

    def describe(self) -> str:
        name = f"boundary set {self.boundary_set_id} (official, from seeds/data)"
        if self.created and self.activated:
            return f"created and activated {name}"
        if self.created:
            return f"created {name}, left inactive: set {self.active_boundary_set_id} is active"
        if self.activated:
            return f"{name} already present; activated it because no set was active"
        if self.active_boundary_set_id == self.boundary_set_id:
            return f"{name} already present and active"
        return f"{name} already present; set {self.active_boundary_set_id} stays active"


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def plan_seed_boundaries() -> ImportPlan:
    return plan_import(
        kelurahan=_read_json(KELURAHAN_FILE),
        # The shipped kecamatan, rather than a dissolve computed here, keep the
        # content hash (and so the seed's idempotence) independent of the GEOS
        # version that would compute it.
        kecamatan=_read_json(KECAMATAN_FILE),
        options=ImportOptions(source=BOUNDARY_SOURCE, accuracy_note=BOUNDARY_ACCURACY_NOTE),
    )


async def seed_boundaries(*, session: AsyncSession) -> BoundariesOutcome:
    plan = plan_seed_boundaries()
    # Only a refused plan has no boundary set; the error lists its problems.
    if plan.boundary_set is None:
        raise ImportRefused(plan.problems)
    existing = await find_by_content_hash(
        session=session, content_hash=plan.boundary_set.content_hash
    )
    if existing is None:
        boundary_set_id = await import_boundaries(session=session, plan=plan, activate=False)
    else:
        boundary_set_id = existing.id

    # Only ever fill a vacancy: whoever activated another set (boundaries of
    # higher resolution, or a newer decree) must not find it replaced by the seed.
    active_id = await active_boundary_set_id(session=session)
    activated = active_id is None
    if active_id is None:
        await activate_boundary_set(session=session, boundary_set_id=boundary_set_id)
        active_id = boundary_set_id

    return BoundariesOutcome(
        boundary_set_id=boundary_set_id,
        created=existing is None,
        activated=activated,
        active_boundary_set_id=active_id,
    )


# In order: later steps (dinas, categories, holidays) may refer to rows that
# earlier steps wrote. Add a step here and a property on SeedResult for it.
SEED_STEPS: tuple[SeedStep, ...] = (seed_boundaries, *REFERENCE_STEPS)

_Outcome = TypeVar("_Outcome", bound=StepOutcome)


@dataclass(frozen=True)
class SeedResult:
    outcomes: tuple[StepOutcome, ...]

    @property
    def boundaries(self) -> BoundariesOutcome:
        return self._outcome(BoundariesOutcome)

    @property
    def partners(self) -> PartnersOutcome:
        return self._outcome(PartnersOutcome)

    @property
    def dinas(self) -> DinasOutcome:
        return self._outcome(DinasOutcome)

    @property
    def categories(self) -> CategoriesOutcome:
        return self._outcome(CategoriesOutcome)

    @property
    def holidays(self) -> HolidaysOutcome:
        return self._outcome(HolidaysOutcome)

    def lines(self) -> list[str]:
        return [f"{outcome.step}: {outcome.describe()}" for outcome in self.outcomes]

    def _outcome(self, kind: type[_Outcome]) -> _Outcome:
        (found,) = (outcome for outcome in self.outcomes if isinstance(outcome, kind))
        return found


async def load_seeds(*, session: AsyncSession) -> SeedResult:
    outcomes = [await step(session=session) for step in SEED_STEPS]
    return SeedResult(outcomes=tuple(outcomes))
