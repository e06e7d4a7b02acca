"""The POC wall screen at /poc: one HTML page with a small inline config, and the
front end's built assets (poc/dist, made by the set-up from poc/src with npm)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from core.settings import Settings

DIST = Path(__file__).resolve().parent.parent / "poc" / "dist"
ENTRY = "poc.js"
ASSETS_PATH = "/poc/assets"

_PAGE = """<!doctype html>
<html lang="id">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Patriot Operation Center · Kota Bekasi</title>
<link rel="stylesheet" href="{assets}/poc.css">
<script id="poc-config" type="application/json">{config}</script>
<script type="module" src="{assets}/{entry}"></script>
</head>
<body><p>Memuat layar POC…</p></body>
</html>
"""


def _inline_json(value: object) -> str:
    # Inside <script>, "</" would end the element: escape it (and friends) as JSON allows.
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _content_security_policy(tile_url: str | None) -> str:
    # A second line of defence behind the page's rule of putting data in as text:
    # no inline script or style and no foreign origin runs or loads, whatever markup
    # a name or title might smuggle in.
    images = ["'self'", "data:"]
    if tile_url:
        parts = urlsplit(tile_url)
        # Leaflet's subdomain placeholder: https://{s}.tile.example/... -> *.tile.example
        host = re.sub(r"^\{[a-z]+\}\.", "*.", parts.netloc)
        images.append(f"{parts.scheme}://{host}" if "{" not in host else f"{parts.scheme}:")
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {' '.join(images)}",
            # 'self' covers the page's own websocket (ws: or wss: of the same host).
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def poc_routes(settings: Settings) -> list[BaseRoute]:
    config = {
        "graphqlPath": "/graphql",
        "tileUrl": settings.poc_tile_url,
    }
    page = _PAGE.format(assets=html.escape(ASSETS_PATH), entry=ENTRY, config=_inline_json(config))
    policy = _content_security_policy(settings.poc_tile_url)

    async def poc_page(request: Request) -> Response:
        if not (DIST / ENTRY).is_file():
            return PlainTextResponse(
                "The POC screen is not built: run scripts/run or scripts/test, which build "
                "poc/ with npm (or: cd poc && npm ci && npm run build).",
                status_code=503,
            )
        return HTMLResponse(
            page,
            headers={
                "cache-control": "no-cache",
                "content-security-policy": policy,
                "referrer-policy": "no-referrer",
                "x-content-type-options": "nosniff",
            },
        )

    return [
        Route("/poc", poc_page, methods=["GET"]),
        Mount(ASSETS_PATH, app=StaticFiles(directory=DIST, check_dir=False), name="poc-assets"),
    ]
