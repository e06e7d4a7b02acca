"""GraphQL shapes of the expected failures in `core.errors`."""

from __future__ import annotations

import strawberry

from core.errors import ValidationFailed


@strawberry.type(description="One input field that was refused, and why.")
class FieldError:
    field: str = strawberry.field(description="Path of the input field, e.g. `location.lat`.")
    message: str


@strawberry.type(description="The input was refused; nothing was written.")
class ValidationError:
    message: str
    fields: list[FieldError]

    @classmethod
    def from_exception(cls, error: ValidationFailed) -> ValidationError:
        return cls(
            message=str(error),
            fields=[FieldError(field=p.field, message=p.message) for p in error.problems],
        )
