"""The one way a mutation answers with a case: as much of it as the caller may see.

A caller may act on a case it does not see in full (a partner supports any
public case); the answer must not hand it the case's title, description, exact
location, media, officer or history on that account.
"""

from __future__ import annotations

import strawberry

from models import Case as CaseModel
from schema.case import Case
from schema.context import Context
from schema.public_case import PublicCase


async def case_for_caller(
    info: strawberry.Info[Context, None], model: CaseModel
) -> Case | PublicCase | None:
    """The case in full within the caller's scope, its public view outside it, or
    nothing (a confidential case outside the scope)."""
    full = Case(model=model)
    if await full.visible_to_caller(info):
        return full
    if not model.confidential:
        return PublicCase(model=model)
    return None
