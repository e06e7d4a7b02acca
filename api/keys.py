"""`python -m api.keys`: create, list and revoke partner API keys.

A new key is printed once; only its SHA-256 is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from sqlalchemy import select, update

from api.auth import hash_key, new_key
from core.database import create_engine, create_session_factory
from core.settings import Settings
from models import Partner, PartnerKey


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m api.keys", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key for a partner")
    create.add_argument("--partner", required=True, help="partner code, e.g. POT or SOROT")
    create.add_argument("--name", required=True, help="what the key is for, e.g. 'POT production'")
    commands.add_parser("list", help="list keys (never the keys themselves)")
    revoke = commands.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id", type=int)
    return parser


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    engine = create_engine(settings)
    try:
        async with create_session_factory(engine)() as session, session.begin():
            if args.command == "create":
                partner_id = await session.scalar(
                    select(Partner.id).where(Partner.code == args.partner.upper())
                )
                if partner_id is None:
                    print(f"no partner has the code {args.partner!r}", file=sys.stderr)
                    return 1
                key = new_key()
                record = PartnerKey(
                    partner_id=partner_id,
                    name=args.name,
                    key_hash=hash_key(key),
                    key_prefix=key[:12],
                )
                session.add(record)
                await session.flush()
                print(f"key {record.id} for {args.partner.upper()} ({args.name}):")
                print(key)
                print("store it now: it is not shown again", file=sys.stderr)
            elif args.command == "list":
                rows = await session.execute(
                    select(PartnerKey, Partner.code)
                    .join(Partner, Partner.id == PartnerKey.partner_id)
                    .order_by(PartnerKey.id)
                )
                for key_row, code in rows:
                    state = "revoked" if key_row.revoked_at else "active"
                    used = key_row.last_used_at.isoformat() if key_row.last_used_at else "never"
                    print(
                        f"{key_row.id}\t{code}\t{key_row.key_prefix}…\t{state}\t"
                        f"created {key_row.created_at.isoformat()}\t"
                        f"last used {used}\t{key_row.name}"
                    )
            else:
                result = await session.execute(
                    update(PartnerKey)
                    .where(PartnerKey.id == args.id, PartnerKey.revoked_at.is_(None))
                    .values(revoked_at=datetime.now(UTC))
                )
                if result.rowcount == 0:  # type: ignore[attr-defined]
                    print(f"no active key has the id {args.id}", file=sys.stderr)
                    return 1
                print(f"revoked key {args.id}")
    finally:
        await engine.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return asyncio.run(_run(args, Settings()))


if __name__ == "__main__":
    raise SystemExit(main())
