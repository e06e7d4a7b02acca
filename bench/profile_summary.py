"""Where a Patriot process spends its time, from a py-spy raw (collapsed) profile.

    python bench/profile_summary.py bench/results/raw/profile-locate.txt

`bench/run.py --profile` writes such files. Prints the share of samples spent
in each phase of a request (inclusive: a phase counts every sample whose stack
passes through it) and in each library (self time: the innermost frame).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# (label, pattern matched against one frame "function (file:line)"); inclusive.
PHASES: list[tuple[str, str]] = [
    ("HTTP server and ASGI (uvicorn, starlette)", r"RequestResponseCycle\.run_asgi"),
    ("GraphQL view: request parsing, response encoding", r"GraphQLView\.__call__"),
    ("GraphQL parse", r"^parse \(graphql/language/parser\.py"),
    ("GraphQL validate", r"^validate \(graphql/validation/validate\.py"),
    ("GraphQL execute (resolvers included)", r"\(graphql/execution/"),
    ("Schema extensions (observer, transaction, errors)", r"strawberry/extensions/context\.py"),
    ("SQLAlchemy session.execute / scalar(s)", r"^(Async)?Session\.(execute|scalar|scalars|get)"),
    ("SQLAlchemy statement compile and cache key", r"(_compile_w_cache|_generate_cache_key)"),
    ("SQLAlchemy ORM result loading", r"(orm/loading\.py|instances \()"),
    ("asyncpg protocol (bind, execute, fetch)", r"^PreparedStatement\.|_prepare_and_execute"),
    ("session flush", r"Session\.flush"),
    ("commit / rollback / close", r"(Session|Transaction)\.(commit|rollback|close)"),
    ("connection checkout / new connections", r"(_checkout|_ConnectionFairy|\.connect \()"),
    ("DataLoader batches", r"dispatch_batch"),
    ("geo.lookup (locate)", r"\(geo/lookup\.py"),
    ("domain.intake (submit_report)", r"\(domain/intake\.py"),
]

LIBRARIES: list[tuple[str, str]] = [
    ("graphql-core", r"\(graphql/"),
    ("strawberry", "strawberry/"),
    ("sqlalchemy", "sqlalchemy/"),
    ("asyncpg", "asyncpg/"),
    ("geoalchemy2", "geoalchemy2/"),
    ("starlette", "starlette/"),
    ("uvicorn", "uvicorn/"),
    ("asyncio / uvloop", "asyncio/"),
    ("pydantic", "pydantic"),
    ("project (api, schema, domain, geo, models)", r"\((api|schema|domain|geo|models)/"),
]


def _library(frame: str) -> str:
    for label, needle in LIBRARIES:
        if re.search(needle, frame):
            return label
    if frame.startswith("<lambda> (<string>"):
        return "generated code (<string>)"
    return "other"


def summarise(path: Path, top: int) -> list[str]:
    phases: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    compiled = [(label, re.compile(pattern)) for label, pattern in PHASES]
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        for label, pattern in compiled:
            if any(pattern.search(frame) for frame in frames):
                phases[label] += samples
        libraries[_library(frames[-1])] += samples
        leaves[frames[-1]] += samples
    if not total:
        return [f"{path}: no samples"]
    lines = [f"{path.name}: {total} samples", "", "phases (inclusive):"]
    lines += [f"  {100 * n / total:5.1f}%  {label}" for label, n in phases.most_common()]
    lines += ["", "libraries (self time of the innermost frame):"]
    lines += [f"  {100 * n / total:5.1f}%  {label}" for label, n in libraries.most_common()]
    lines += ["", f"top {top} innermost frames:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in leaves.most_common(top)]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    for path in args.profiles:
        print("\n".join(summarise(path, args.top)))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
