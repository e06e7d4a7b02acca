"""Loading the seed data, step by step, in the caller's transaction.

Every step is idempotent: running the seeds again finds what an earlier run
wrote and adds nothing. Steps flush but never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from geo.store import (
    activate_boundary_set,
    active_boundary_set_id,
    find_by_content_hash,
    write_boundary_set,
)
from seeds.approximate import build_approximate_boundaries
from seeds.reference import (
    REFERENCE_STEPS,
    CategoriesOutcome,
    DinasOutcome,
    HolidaysOutcome,
    PartnersOutcome,
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
        if self.created and self.activated:
            return f"created and activated approximate set {self.boundary_set_id}"
        if self.created:
            return (
                f"created approximate set {self.boundary_set_id}, left inactive: "
                f"set {self.active_boundary_set_id} is active"
            )
        if self.activated:
            return (
                f"approximate set {self.boundary_set_id} already present; "
                "activated it because no set was active"
            )
        if self.active_boundary_set_id == self.boundary_set_id:
            return f"approximate set {self.boundary_set_id} already present and active"
        return (
            f"approximate set {self.boundary_set_id} already present; "
            f"set {self.active_boundary_set_id} stays active"
        )


async def seed_boundaries(*, session: AsyncSession) -> BoundariesOutcome:
    boundaries = build_approximate_boundaries()
    existing = await find_by_content_hash(session=session, content_hash=boundaries.content_hash)
    if existing is None:
        boundary_set_id = await write_boundary_set(session=session, boundary_set=boundaries)
    else:
        boundary_set_id = existing.id

    # Only ever fill a vacancy: someone who activated the official boundaries
    # (or another set) must not find them replaced by a rough seed.
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
