"""Plausibility checks on what a boundary file says, beyond its geometry: how deep
it nests, whether its texts are names at all, whether a kelurahan's code agrees
with its kecamatan. Pure functions, shared by the file reader and its tests."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

# GeoJSON needs 8 levels (collection, features, feature, geometry, coordinates,
# polygon, ring, position); the rest is room for nested properties. Anything
# deeper is not a boundary file, and would exhaust Python's stack in any code
# that walks it recursively.
MAX_NESTING = 32
# The size of the code columns (models/boundaries.py).
MAX_CODE_LENGTH = 32
# The longest kelurahan or kecamatan name in Indonesia is about 40 characters; a
# longer one is a mistaken column or garbage, and would be shown on every screen.
MAX_NAME_LENGTH = 100
# The source and accuracy note given on the command line.
MAX_NOTE_LENGTH = 1_000
# Files larger than this are refused before they are read: parsing JSON takes
# about ten times its size in memory.
MAX_FILE_MB = 256

# Control, format (zero-width, bidirectional overrides), surrogate, private-use
# and unassigned characters: none of them belongs in a place name or code.
_ABSURD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})

# Kemendagri codes: province 2 digits, regency 2, kecamatan 2, desa or kelurahan 4,
# written 32.75.08.1001, or 3275081001 when a spreadsheet dropped the dots.
_KEMENDAGRI_PREFIX_LENGTHS = (2, 4, 6, 10)


def deeper_than(value: object, limit: int) -> bool:
    """Whether `value` nests lists and objects more than `limit` levels deep.

    Iterative, so that a document nested thousands of levels deep is measured
    rather than crashing the measurement."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[object] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def text_problem(value: str, *, max_length: int) -> str | None:
    """Why `value` cannot be a name or code, or None when it can."""
    if len(value) > max_length:
        return f"is {len(value):,} characters long, more than {max_length}"
    for character in value:
        if unicodedata.category(character) in _ABSURD_CATEGORIES:
            name = unicodedata.name(character, "a control or invisible character")
            return f"holds U+{ord(character):04X} ({name}), which cannot be in a name or code"
    return None


def code_segments(code: str) -> tuple[str, ...]:
    if "." in code:
        return tuple(code.split("."))
    if code.isascii() and code.isdigit() and len(code) in _KEMENDAGRI_PREFIX_LENGTHS:
        ends = _KEMENDAGRI_PREFIX_LENGTHS[: _KEMENDAGRI_PREFIX_LENGTHS.index(len(code)) + 1]
        return tuple(code[start:end] for start, end in zip((0, *ends[:-1]), ends, strict=True))
    return (code,)


def parent_code_problem(code: str, parent_code: str) -> str | None:
    """Why a kelurahan with code `code` cannot belong to kecamatan `parent_code`:
    a kelurahan's code is its kecamatan's code followed by one more segment."""
    own = code_segments(code)
    if len(own) < 2:
        return (
            f"its code does not start with a kecamatan code (a Kemendagri code such as"
            f" 32.75.08.1001 belongs to kecamatan 32.75.08), so kecamatan {parent_code!r}"
            " cannot be checked"
        )
    if own[:-1] != code_segments(parent_code):
        return (
            f"kecamatan code {parent_code!r} disagrees with its own code, which belongs"
            f" to kecamatan {'.'.join(own[:-1])}"
        )
    return None
