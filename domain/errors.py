"""The one hierarchy of errors the domain raises on purpose.

Each maps to one GraphQL result type in `schema/errors.py`; anything else that
escapes a resolver is a bug and is masked.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


class PatriotError(Exception):
    """Base of every expected, user-facing failure."""


class ValidationFailed(PatriotError):
    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


class NoActiveBoundarySet(PatriotError):
    def __init__(self) -> None:
        super().__init__("no boundary set is active: load seeds or import and activate boundaries")


class InvalidArguments(PatriotError):
    """The caller combined arguments in a way the API does not accept."""
