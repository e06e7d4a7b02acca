"""`python -m api`: serve the API with uvicorn, configured from PATRIOT_* variables."""

from __future__ import annotations

import gc
import logging

import uvicorn

from api.app import create_app
from core.settings import Settings


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(message)s")
    app = create_app(settings)
    # Modules, the schema and the app live as long as the process: moved out of
    # the collector's way, they are never traversed again by full collections.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        log_level=settings.log_level.lower(),
        access_log=False,
    )


if __name__ == "__main__":
    main()
