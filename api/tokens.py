"""`python -m api.tokens`: issue a staff token for local development and demos.

In production tokens come from the city's identity provider; this command
refuses to run there.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from api.auth import issue_token
from core.settings import Environment, Settings
from domain.access import DINAS_ROLES, KECAMATAN_ROLES, KELURAHAN_ROLES, Role


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api.tokens", description=__doc__)
    parser.add_argument("--role", required=True, choices=[r.value for r in Role])
    parser.add_argument("--sub", default="developer", help="who the token is for")
    parser.add_argument("--kecamatan", help="kecamatan code, for CAMAT")
    parser.add_argument("--kelurahan", help="kelurahan code, for LURAH and KELURAHAN_OFFICER")
    parser.add_argument("--dinas", help="dinas code, for DINAS_HEAD and DINAS_OFFICER")
    parser.add_argument("--hours", type=float, default=8.0)
    args = parser.parse_args(argv)

    settings = Settings()
    if settings.environment is Environment.PRODUCTION:
        print("refusing to issue tokens in production", file=sys.stderr)
        return 2
    role = Role(args.role)
    needed = (
        "kecamatan"
        if role in KECAMATAN_ROLES
        else "kelurahan"
        if role in KELURAHAN_ROLES
        else "dinas"
        if role in DINAS_ROLES
        else None
    )
    if needed and not getattr(args, needed):
        parser.error(f"--{needed} is required for {role}")
    scope = {needed: getattr(args, needed)} if needed else {}
    print(
        issue_token(
            settings=settings,
            subject=args.sub,
            role=role,
            scope=scope,
            lifetime=timedelta(hours=args.hours),
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
