"""What alembic should compare between the models and a live database."""

from __future__ import annotations

from geoalchemy2 import alembic_helpers

# Created by the PostGIS extension, not by our migrations.
EXTENSION_TABLES = frozenset({"spatial_ref_sys"})


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    if type_ == "table" and name in EXTENSION_TABLES:
        return False
    # geoalchemy2's helper is untyped.
    keep = alembic_helpers.include_object(obj, name, type_, reflected, compare_to)  # type: ignore[no-untyped-call]
    return bool(keep)
