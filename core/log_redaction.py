"""What a log may say about a database error: its kind, PostgreSQL's SQLSTATE, the
names of the constraint, table and column involved, and the statement's shape.

Never a value: statement parameters hold reporters' names, phones and e-mail
addresses, and PostgreSQL quotes values back in its messages ('Failing row
contains (…)', 'Key (…)=(…) already exists', 'invalid input syntax for type
integer: "…"'), as does asyncpg when it cannot encode an argument. The engine
hides the parameters (core/database.py); every log record whose exception
involves a database error is rewritten here, whichever logger wrote it
(Strawberry's, uvicorn's, the project's own).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from typing import Any

import asyncpg
from sqlalchemy.exc import StatementError

_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"
# What asyncpg and PostgreSQL name without quoting any value.
_NAMES = ("constraint_name", "table_name", "column_name", "data_type_name")


def _chain(error: BaseException) -> Iterator[tuple[BaseException, str]]:
    """The error and those it arose from, innermost first, with the line that links
    each to the next: the order and wording of Python's own traceback."""
    # Outermost first, each with the line that links it to the one before.
    links: list[tuple[BaseException, str]] = []
    seen: set[int] = set()
    current: BaseException | None = error
    link = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        links.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    yield from reversed(links)


def _database_errors(error: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    for exc, _ in _chain(error):
        if isinstance(exc, StatementError):
            found.append(exc)
            if exc.orig is not None:
                # SQLAlchemy's adaptation of the driver's error, which quotes it.
                found.append(exc.orig)
        elif isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
            found.append(exc)
        if isinstance(exc, BaseExceptionGroup):
            for member in exc.exceptions:
                found.extend(_database_errors(member))
    return found


def _driver_error(error: BaseException) -> asyncpg.PostgresError | None:
    for exc, _ in _chain(error):
        if isinstance(exc, asyncpg.PostgresError):
            return exc
    return None


def _kind(error: BaseException) -> str:
    details: list[str] = []
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str):
        details.append(f"SQLSTATE {sqlstate}")
    driver = _driver_error(error)
    if driver is not None:
        for name in _NAMES:
            value = getattr(driver, name, None)
            if isinstance(value, str) and value:
                details.append(f"{name.removesuffix('_name').replace('_', ' ')} {value}")
    return type(error).__name__ + (f" ({', '.join(details)})" if details else "")


def describe_database_error(error: BaseException) -> str | None:
    """A description of a database error that quotes no value; None for another error."""
    if isinstance(error, StatementError):
        kind = _kind(error.orig) if error.orig is not None else None
        description = type(error).__name__ + (f": {kind}" if kind else "")
        if error.statement:
            description += f" in statement: {' '.join(error.statement.split())}"
        return description
    if isinstance(error, asyncpg.PostgresError | asyncpg.InterfaceError):
        return _kind(error)
    return None


def _redact(text: str, replacements: list[tuple[str, str]]) -> str:
    for original, safe in replacements:
        text = text.replace(original, safe)
    return text


def _replacements(errors: list[BaseException]) -> list[tuple[str, str]]:
    pairs: dict[str, str] = {}
    for error in errors:
        original = str(error)
        if not original:
            continue
        described = describe_database_error(error)
        if described is None:
            # An adapted driver error: described by what it carries.
            described = _kind(error)
        pairs[original] = described
    # The longest first: a statement error's text contains its driver error's.
    return sorted(pairs.items(), key=lambda pair: len(pair[0]), reverse=True)


def format_exception_safely(error: BaseException) -> str:
    """Python's traceback of `error`, frames and chain included, with every
    database error's text replaced by its description."""
    replacements = _replacements(_database_errors(error))
    lines: list[str] = []
    for exc, following in _chain(error):
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_tb(exc.__traceback__))
        kind = type(exc)
        qualified = kind.__qualname__
        if kind.__module__ not in ("builtins", "__main__"):
            qualified = f"{kind.__module__}.{qualified}"
        message = describe_database_error(exc) or _redact(str(exc), replacements)
        lines.append(f"{qualified}: {message}\n" if message else f"{qualified}\n")
        if isinstance(exc, BaseExceptionGroup):
            for number, member in enumerate(exc.exceptions, start=1):
                nested = format_exception_safely(member)
                lines.append(f"+---------------- {number} ----------------\n")
                lines.extend(f"    {line}\n" for line in nested.splitlines())
        lines.append(following)
    return "".join(lines).rstrip("\n")


def redact_record(record: logging.LogRecord) -> None:
    """Rewrites a record whose exception involves a database error: its message and
    trace then describe that error instead of quoting it."""
    if not record.exc_info or record.exc_info[1] is None:
        return
    error = record.exc_info[1]
    databases = _database_errors(error)
    if not databases:
        return
    replacements = _replacements(databases)
    try:
        message = record.getMessage()
    except (TypeError, ValueError, KeyError):
        # Arguments that do not fit the format: logging reports that when it emits.
        message = str(record.msg)
    record.msg = _redact(message, replacements)
    record.args = ()
    record.exc_text = format_exception_safely(error)
    # Formatters and handlers that would render the exception themselves get nothing.
    record.exc_info = None


class _RedactingFactory:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.inner(*args, **kwargs)
        redact_record(record)
        return record


def install_log_redaction() -> None:
    """Makes every log record of the process go through `redact_record`; once."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, _RedactingFactory):
        logging.setLogRecordFactory(_RedactingFactory(current))
