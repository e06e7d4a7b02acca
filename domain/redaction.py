"""Taking a reporter's name, phone number and e-mail address out of free text.

Nothing Patriot writes copies them out of the case's own columns, but people do:
a citizen signs the description, an officer notes "called Bu Siti at 0812…" in a
comment. Erasing the reporter erases those quotes too, wherever they are written
the way the details were given (case and spaces aside; a phone number in any of
its national or international forms, with or without separators).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

REDACTED = "[dihapus]"
# Shorter names ("Al", "Yu") would blot out ordinary words of the text.
MIN_NAME_CHARS = 3
# What people put between the digits of a phone number.
_PHONE_SEPARATORS = r"[\s.\-()/]*"


def _phone_pattern(phone: str) -> str | None:
    """The number stored as +62…, written as +62…, 62… or 0…, with any separators."""
    digits = re.sub(r"\D", "", phone)
    if phone.strip().startswith("+62") or digits.startswith("62"):
        national = digits[2:]
    elif digits.startswith("0"):
        national = digits[1:]
    else:
        national = digits
    if len(national) < 6:
        return None
    body = _PHONE_SEPARATORS.join(national)
    prefix = rf"(?:\(?(?:\+{_PHONE_SEPARATORS}62|62|0){_PHONE_SEPARATORS})?"
    return rf"(?<!\d){prefix}{body}(?!\d)"


def _name_pattern(name: str) -> str | None:
    words = name.split()
    if len("".join(words)) < MIN_NAME_CHARS:
        return None
    return r"(?<!\w)" + r"\s+".join(re.escape(word) for word in words) + r"(?!\w)"


@dataclass(frozen=True)
class Redactor:
    pattern: re.Pattern[str] | None

    @classmethod
    def for_reporter(cls, *, name: str | None, phone: str | None, email: str | None) -> Redactor:
        parts = [
            p
            for p in (
                re.escape(email.strip()) if email and email.strip() else None,
                _phone_pattern(phone) if phone else None,
                _name_pattern(name) if name else None,
            )
            if p
        ]
        if not parts:
            return cls(pattern=None)
        return cls(pattern=re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE))

    def text(self, value: str) -> str:
        if self.pattern is None:
            return value
        return self.pattern.sub(REDACTED, value)

    def json(self, value: Any) -> Any:
        """Every string of a JSON value (keys stay: they are ours, not people's)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, dict):
            return {k: self.json(v) for k, v in value.items()}
        return value
