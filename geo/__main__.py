"""The command line of the boundary importer (`geo.importer`).

It is a dry run until `--commit`:

    python -m geo kelurahan.geojson [--kecamatan kecamatan.geojson] [--commit [--activate]]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from core.database import create_engine, create_session_factory
from core.settings import Settings
from geo.boundary_checks import MAX_FILE_MB, MAX_NESTING, MAX_NOTE_LENGTH, text_problem
from geo.importer import ImportOptions, ImportPlan, import_boundaries, plan_import


class _InputFileError(Exception):
    pass


def _load_json(path: Path, *, max_mb: int) -> Any:
    try:
        size = path.stat().st_size
        if size > max_mb * 1024 * 1024:
            raise _InputFileError(
                f"{path} has {size / 1024 / 1024:,.0f} MB, more than {max_mb} MB"
                " (--max-file-mb): refused before reading it"
            )
        # utf-8-sig: files saved by some Windows tools start with a byte-order mark.
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise _InputFileError(f"cannot read {path}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise _InputFileError(f"{path} is not UTF-8 text: {error}") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _InputFileError(f"{path} is not valid JSON: {error}") from error
    except ValueError as error:
        # Python refuses to convert integers of thousands of digits.
        raise _InputFileError(f"{path} holds a number Python cannot read: {error}") from error
    except RecursionError as error:
        # The json module nests one Python call per level of the document.
        raise _InputFileError(
            f"{path} nests lists and objects too deeply for Python's JSON reader:"
            f" not a boundary file (GeoJSON needs fewer than {MAX_NESTING} levels)"
        ) from error


def _parser() -> argparse.ArgumentParser:
    defaults = ImportOptions(source="")
    parser = argparse.ArgumentParser(
        prog="python -m geo",
        description="Import kelurahan boundaries (GeoJSON) as a new boundary set."
        " Dry run unless --commit.",
    )
    parser.add_argument("kelurahan", type=Path, help="kelurahan GeoJSON FeatureCollection")
    parser.add_argument(
        "--kecamatan",
        type=Path,
        help="kecamatan GeoJSON FeatureCollection; without it the kecamatan are"
        " derived by dissolving the kelurahan on their kecamatan code",
    )
    properties: list[tuple[str, str, str]] = [
        ("--code-property", "code_property", "kelurahan code"),
        ("--name-property", "name_property", "kelurahan name"),
        ("--parent-code-property", "parent_code_property", "kelurahan's kecamatan code"),
        ("--parent-name-property", "parent_name_property", "kelurahan's kecamatan name"),
        ("--kecamatan-code-property", "kecamatan_code_property", "code in the kecamatan file"),
        ("--kecamatan-name-property", "kecamatan_name_property", "name in the kecamatan file"),
    ]
    for flag, attribute, what in properties:
        default = getattr(defaults, attribute)
        parser.add_argument(
            flag, dest=attribute, default=default, help=f"property holding the {what} ({default})"
        )
    parser.add_argument("--source", help="where the boundaries come from (the file name)")
    parser.add_argument("--note", default=defaults.accuracy_note, help="accuracy note")
    parser.add_argument(
        "--approximate", action="store_true", help="mark the boundaries as approximate"
    )
    parser.add_argument(
        "--max-name-length",
        type=int,
        default=defaults.max_name_length,
        help=f"refuse longer names ({defaults.max_name_length} characters)",
    )
    parser.add_argument(
        "--max-file-mb",
        type=int,
        default=MAX_FILE_MB,
        help=f"refuse larger files without reading them ({MAX_FILE_MB} MB)",
    )
    parser.add_argument("--commit", action="store_true", help="write the boundary set")
    parser.add_argument(
        "--activate", action="store_true", help="make the new set the active one (needs --commit)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.activate and not args.commit:
        parser.error("--activate needs --commit")

    try:
        kelurahan = _load_json(args.kelurahan, max_mb=args.max_file_mb)
        kecamatan = (
            _load_json(args.kecamatan, max_mb=args.max_file_mb)
            if args.kecamatan is not None
            else None
        )
    except _InputFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1

    options = ImportOptions(
        source=args.source or args.kelurahan.name,
        code_property=args.code_property,
        name_property=args.name_property,
        parent_code_property=args.parent_code_property,
        parent_name_property=args.parent_name_property,
        kecamatan_code_property=args.kecamatan_code_property,
        kecamatan_name_property=args.kecamatan_name_property,
        accuracy_note=args.note,
        is_approximate=args.approximate,
        max_name_length=args.max_name_length,
    )
    # Both are stored and shown with the boundary set.
    for what, value in (("the source", options.source), ("the note", options.accuracy_note)):
        problem = text_problem(value, max_length=MAX_NOTE_LENGTH)
        if problem is not None:
            parser.error(f"{what} {problem}")
    plan = plan_import(kelurahan=kelurahan, kecamatan=kecamatan, options=options)
    print(plan.summary())
    if not plan.ok:
        return 1
    if not args.commit:
        print("dry run: nothing written (use --commit)")
        return 0
    return _commit(plan, activate=args.activate)


def _commit(plan: ImportPlan, *, activate: bool) -> int:
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"error: database settings: {error}", file=sys.stderr)
        return 2
    try:
        boundary_set_id = asyncio.run(_write(settings=settings, plan=plan, activate=activate))
    except (OSError, SQLAlchemyError) as error:
        print(f"error: nothing committed, the database write failed: {error}", file=sys.stderr)
        return 1
    state = "active" if activate else "inactive"
    print(f"committed boundary set {boundary_set_id} ({state})")
    return 0


async def _write(*, settings: Settings, plan: ImportPlan, activate: bool) -> int:
    engine = create_engine(settings)
    try:
        session_factory = create_session_factory(engine)
        async with session_factory() as session, session.begin():
            return await import_boundaries(session=session, plan=plan, activate=activate)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
