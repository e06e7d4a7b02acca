"""Writing and activating boundary sets (geo/store.py)."""

from __future__ import annotations

import shapely
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from geo.areas import AreaInput, BoundarySetInput
from geo.store import WRITE_STATEMENT_TIMEOUT_MS, write_boundary_set


async def test_writing_a_set_lifts_the_statement_timeout_for_its_transaction(
    session: AsyncSession,
) -> None:
    # Cutting 83,000 kelurahan into lookup pieces is one statement of about 20 s:
    # the API's timeout (15 s by default) would cancel the whole import.
    square = shapely.MultiPolygon([shapely.box(19.9, 9.9, 20.1, 10.1)])
    await write_boundary_set(
        session=session,
        boundary_set=BoundarySetInput(
            source="test",
            accuracy_note="test",
            is_approximate=True,
            kecamatan=[AreaInput("K1", "K", square)],
            kelurahan=[AreaInput("K1.1", "L", square, parent_code="K1")],
        ),
    )
    timeout = await session.scalar(text("SELECT current_setting('statement_timeout')"))
    assert timeout == f"{WRITE_STATEMENT_TIMEOUT_MS // 3_600_000}h"
