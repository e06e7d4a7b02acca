"""`python -m api`: serve the API with uvicorn, configured from PATRIOT_* variables."""

from __future__ import annotations

import gc
import logging

import uvicorn

from api.app import create_app
from api.http_guard import ReadLimits, http_protocol
from core.settings import Settings


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(message)s")
    app = create_app(settings)
    refused = app.state.metrics.connections_refused
    limits = ReadLimits(
        header_timeout_s=settings.http_header_timeout_s,
        body_timeout_s=settings.http_body_timeout_s,
        max_header_bytes=settings.http_max_header_bytes,
        on_refused=lambda reason: refused.labels(reason=reason).inc(),
        on_guard=lambda guarding: app.state.metrics.http_read_guard.set(1 if guarding else 0),
    )
    # Modules, the schema and the app live as long as the process: moved out of
    # the collector's way, they are never traversed again by full collections.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=http_protocol(limits),
        ws="websockets-sansio",
        # A websocket message may be as large as a request body, and no larger:
        # uvicorn reads and buffers a whole frame before anyone authenticated.
        ws_max_size=settings.max_body_bytes,
        timeout_keep_alive=settings.http_keep_alive_s,
        limit_concurrency=settings.max_connections,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


if __name__ == "__main__":
    main()
