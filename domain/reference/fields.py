"""The fields of the reference data: how codes, texts and numbers are checked, and
`KEEP` for each field an update leaves as it is."""

from __future__ import annotations

import re
from enum import Enum
from typing import Final

from core.errors import FieldProblem, ValidationFailed


class Keep(Enum):
    KEEP = "KEEP"


KEEP: Final = Keep.KEEP

CODE_PATTERN = re.compile(r"[A-Z][A-Z0-9_]*")
NAME_MAX = 200


class Problems:
    def __init__(self) -> None:
        self.items: list[FieldProblem] = []

    def add(self, field: str, message: str) -> None:
        self.items.append(FieldProblem(field, message))

    def extend(self, error: ValidationFailed) -> None:
        self.items.extend(error.problems)

    def has(self, field: str) -> bool:
        return any(p.field == field for p in self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationFailed(self.items)


def refuse(field: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldProblem(field, message)])


def normalise_code(code: str) -> str:
    return code.strip().upper()


def checked_code(value: str, *, field: str, max_length: int, problems: Problems) -> str:
    code = normalise_code(value)
    if not CODE_PATTERN.fullmatch(code):
        problems.add(
            field,
            "use capital letters, digits and underscores, starting with a letter "
            "(e.g. `JALAN_RUSAK`)",
        )
    elif len(code) > max_length:
        problems.add(field, f"at most {max_length} characters")
    return code


def checked_text(value: str, *, field: str, max_length: int, problems: Problems) -> str:
    text = value.strip()
    if not text:
        problems.add(field, "must not be empty")
    elif len(text) > max_length:
        problems.add(field, f"at most {max_length} characters")
    return text


def check_in_range(value: int, bounds: tuple[int, int], *, field: str, problems: Problems) -> None:
    low, high = bounds
    if not low <= value <= high:
        problems.add(field, f"must be between {low} and {high}")
