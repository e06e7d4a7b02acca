"""`python -m api`: serve the API with uvicorn, configured from PATRIOT_* variables."""

from __future__ import annotations

import logging

import uvicorn

from api.app import create_app
from api.settings import Settings


def main() -> None:
    settings = Settings()  # type: ignore[call-arg]
    logging.basicConfig(level=settings.log_level, format="%(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level.lower(),
        access_log=False,
    )


if __name__ == "__main__":
    main()
