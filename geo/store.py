"""Writing and activating boundary sets. Callers own the transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from geoalchemy2 import Geography
from geoalchemy2.functions import ST_Area, ST_Dump, ST_Subdivide
from geoalchemy2.shape import from_shape
from sqlalchemy import cast, func, insert, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from geo.areas import AreaInput, BoundarySetInput
from models import BoundarySet, Kecamatan, Kelurahan, KelurahanPiece

# Pieces of at most this many vertices keep each point-in-polygon test cheap
# (mapit and the PostGIS docs both land in the low hundreds; smaller favours lookups).
SUBDIVIDE_MAX_VERTICES = 64

# Writing a set is a bulk job (cutting 83,000 kelurahan into lookup pieces is one
# statement of about 20 s); the API's short statement timeout is for requests.
WRITE_STATEMENT_TIMEOUT_MS = 3_600_000

# Server processes keep the active set in memory (geo.boundary_index); they
# listen here, and PostgreSQL delivers the notification only if the activation commits.
BOUNDARY_SETS_CHANNEL = "boundary_sets"


class BoundarySetNotFound(LookupError):
    pass


def _wkb(area: AreaInput) -> object:
    return from_shape(area.geometry, srid=4326)


async def find_by_content_hash(*, session: AsyncSession, content_hash: str) -> BoundarySet | None:
    result = await session.execute(
        select(BoundarySet).where(BoundarySet.content_hash == content_hash).limit(1)
    )
    return result.scalar_one_or_none()


async def write_boundary_set(*, session: AsyncSession, boundary_set: BoundarySetInput) -> int:
    """Insert a new, inactive boundary set with its areas and lookup pieces."""
    # Until the caller's transaction ends (SET LOCAL).
    await session.execute(
        select(func.set_config("statement_timeout", str(WRITE_STATEMENT_TIMEOUT_MS), True))
    )
    record = BoundarySet(
        source=boundary_set.source,
        accuracy_note=boundary_set.accuracy_note,
        is_approximate=boundary_set.is_approximate,
        content_hash=boundary_set.content_hash,
        kecamatan_count=len(boundary_set.kecamatan),
        kelurahan_count=len(boundary_set.kelurahan),
        quality=boundary_set.quality,
    )
    session.add(record)
    await session.flush()

    kecamatan_ids: dict[str, int] = {}
    for area in boundary_set.kecamatan:
        geom = _wkb(area)
        kecamatan = Kecamatan(
            boundary_set_id=record.id,
            code=area.code,
            name=area.name,
            geom=geom,
            area_km2=select(ST_Area(cast(geom, Geography)) / 1e6).scalar_subquery(),
        )
        session.add(kecamatan)
        await session.flush()
        kecamatan_ids[area.code] = kecamatan.id

    for area in boundary_set.kelurahan:
        if area.parent_code not in kecamatan_ids:
            raise ValueError(f"kelurahan {area.code} names unknown kecamatan {area.parent_code!r}")
        geom = _wkb(area)
        kelurahan = Kelurahan(
            boundary_set_id=record.id,
            kecamatan_id=kecamatan_ids[area.parent_code],
            code=area.code,
            name=area.name,
            geom=geom,
            area_km2=select(ST_Area(cast(geom, Geography)) / 1e6).scalar_subquery(),
        )
        session.add(kelurahan)
    await session.flush()

    pieces = (
        select(
            literal(record.id).label("boundary_set_id"),
            Kelurahan.id.label("kelurahan_id"),
            ST_Dump(ST_Subdivide(Kelurahan.geom, SUBDIVIDE_MAX_VERTICES)).geom.label("geom"),
        )
        .where(Kelurahan.boundary_set_id == record.id)
        .subquery()
    )
    await session.execute(
        insert(KelurahanPiece).from_select(
            ["boundary_set_id", "kelurahan_id", "geom"],
            select(pieces.c.boundary_set_id, pieces.c.kelurahan_id, pieces.c.geom),
        )
    )
    # Without fresh statistics the planner does not know that a set's id
    # matches every new row: on 127,654 new pieces it scanned all of them per
    # lookup (5 ms instead of 0.2) until autovacuum came by. ANALYZE has no
    # SQLAlchemy construct; it takes no parameters and runs in this transaction.
    for table in (Kecamatan, Kelurahan, KelurahanPiece):
        await session.execute(text(f"ANALYZE {table.__tablename__}"))
    return record.id


async def activate_boundary_set(*, session: AsyncSession, boundary_set_id: int) -> None:
    """Make one set the active one. Both updates land in the caller's transaction."""
    exists = await session.scalar(select(BoundarySet.id).where(BoundarySet.id == boundary_set_id))
    if exists is None:
        raise BoundarySetNotFound(f"boundary set {boundary_set_id} does not exist")
    await session.execute(
        update(BoundarySet)
        .where(BoundarySet.is_active, BoundarySet.id != boundary_set_id)
        .values(is_active=False)
    )
    await session.execute(
        update(BoundarySet)
        .where(BoundarySet.id == boundary_set_id, BoundarySet.is_active.is_(False))
        .values(is_active=True, activated_at=datetime.now(UTC))
    )
    await session.execute(select(func.pg_notify(BOUNDARY_SETS_CHANNEL, str(boundary_set_id))))
    await session.flush()


async def active_boundary_set_id(*, session: AsyncSession) -> int | None:
    return await session.scalar(select(BoundarySet.id).where(BoundarySet.is_active))
