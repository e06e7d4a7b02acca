"""`python -m seeds`: load the seed data into the configured database, in one transaction."""

from __future__ import annotations

import asyncio

from core.database import create_engine, create_session_factory
from core.settings import Settings
from seeds.loader import load_seeds


async def main() -> int:
    settings = Settings()
    engine = create_engine(settings)
    try:
        session_factory = create_session_factory(engine)
        async with session_factory() as session, session.begin():
            result = await load_seeds(session=session)
    finally:
        await engine.dispose()
    # Printed only after the commit, so every line describes what is now stored.
    for line in result.lines():
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
