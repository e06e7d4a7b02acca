"""Checks of a latitude/longitude pair before it goes anywhere near PostGIS."""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.errors import FieldProblem, ValidationFailed


@dataclass(frozen=True)
class LatLon:
    lat: float
    lon: float


def _in_range(lat: float, lon: float) -> bool:
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0


def validate_lat_lon(lat: float, lon: float, *, prefix: str = "") -> LatLon:
    """Return the point, or raise ValidationFailed naming each bad coordinate."""
    lat_field, lon_field = f"{prefix}lat", f"{prefix}lon"
    problems: list[FieldProblem] = []
    if not math.isfinite(lat):
        problems.append(FieldProblem(lat_field, "latitude must be a finite number"))
    if not math.isfinite(lon):
        problems.append(FieldProblem(lon_field, "longitude must be a finite number"))
    if problems:
        raise ValidationFailed(problems)
    if _in_range(lat, lon):
        return LatLon(lat, lon)
    if _in_range(lon, lat):
        # A classic GeoJSON mix-up: [lon, lat] sent as (lat, lon).
        raise ValidationFailed(
            [
                FieldProblem(
                    lat_field,
                    f"latitude {lat} is out of range -90..90; latitude and longitude look "
                    f"swapped (did you mean lat={lon}, lon={lat}?)",
                )
            ]
        )
    if not -90.0 <= lat <= 90.0:
        problems.append(FieldProblem(lat_field, f"latitude {lat} is out of range -90..90"))
    if not -180.0 <= lon <= 180.0:
        problems.append(FieldProblem(lon_field, f"longitude {lon} is out of range -180..180"))
    raise ValidationFailed(problems)
