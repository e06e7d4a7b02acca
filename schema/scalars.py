from __future__ import annotations

from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

GeoJSON = NewType("GeoJSON", dict[str, Any])

SCALARS: dict[object, ScalarDefinition] = {
    GeoJSON: strawberry.scalar(
        name="GeoJSON",
        description="A GeoJSON geometry object (RFC 7946): WGS 84, longitude before latitude.",
        specified_by_url="https://www.rfc-editor.org/rfc/rfc7946",
        serialize=lambda value: value,
        parse_value=lambda value: value,
    )
}
