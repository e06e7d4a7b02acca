"""The /poc wall screen in a real browser (Debian's chromium through Playwright), against a
real server process: live markers and counters, and resuming after a network drop."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.poc import _content_security_policy
from tests import bekasi
from tests.conftest import ROOT, wipe_committed_cases
from tests.factories import SUBMIT, report_input
from tests.servers import Server, running_servers

pytestmark = pytest.mark.usefixtures("reference_data")

# Playwright evaluates its wait predicates as strings, which the page's content
# security policy forbids: the tests bypass it, except the one that runs the wall
# under its policy.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "tests" / "artifacts"
LIVE_WITHIN_MS = 2_000


def _chromium() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None
    )
    if found is None:
        pytest.fail(
            "chromium is not installed: the POC screen tests need Debian's chromium. "
            "Run ./scripts/test, which installs it, or: apt-get install chromium",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="module")
def server(
    test_database_url: str, tmp_path_factory: pytest.TempPathFactory, reference_data: None
) -> Iterator[Server]:
    if not (ROOT / "poc" / "dist" / "poc.js").is_file():
        pytest.fail(
            "poc/dist is missing: run ./scripts/test, which builds the POC screen "
            "(or: cd poc && npm ci && npm run build)",
            pytrace=False,
        )
    with running_servers(
        1,
        database_url=test_database_url,
        tmp_path=tmp_path_factory.mktemp("poc-server"),
        PATRIOT_SWEEPER_ENABLED="false",
    ) as started:
        yield started[0]


@pytest.fixture
async def committed(engine: AsyncEngine) -> AsyncIterator[None]:
    """The server commits the reports for real; wipe them afterwards."""
    try:
        yield
    finally:
        await wipe_committed_cases(engine)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    executable = _chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


Credentials = Callable[[str | None], dict[str, str]]


@pytest.fixture
def operator_token(committed_credentials: Credentials) -> str:
    """A POC operator's staff token, as the identity provider would issue it."""
    return committed_credentials("POC_OPERATOR")["authorization"].removeprefix("Bearer ")


async def _submit(
    server: Server, credentials: Credentials, location: dict[str, float], title: str
) -> str:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            server.http,
            json={
                "query": SUBMIT,
                "variables": {"input": report_input(location=location, title=title)},
            },
            headers=credentials("partner:POT"),
        )
    result: dict[str, Any] = response.json()["data"]["submitReport"]
    assert result["__typename"] == "Case", result
    ticket: str = result["ticket"]
    return ticket


def _marker(page: Page, ticket: str) -> Any:
    return page.locator(f'path.case-marker[data-ticket="{ticket}"]')


def _counter(page: Page, key: str) -> Any:
    return page.locator(f'[data-counter="{key}"] .value')


async def _sign_in(page: Page, token: str) -> None:
    await page.fill("#token", token)
    await page.click("#signin-button")


async def _open_live_wall(page: Page, server: Server, token: str) -> None:
    """Open the wall, which first asks for a token, sign in, and wait until it is live."""
    await page.goto(f"http://127.0.0.1:{server.port}/poc")
    await expect(page.locator("#error")).to_contain_text("token petugas", timeout=20_000)
    await _sign_in(page, token)
    await page.wait_for_function(
        "window.poc && window.poc.ready && window.poc.connection === 'connected'",
        timeout=20_000,
    )


async def _drop(context: BrowserContext, page: Page) -> None:
    """The browser goes offline (so it cannot reconnect) and the page's hook cuts
    the open websocket, as a dead network would."""
    await context.set_offline(True)
    await page.evaluate("window.poc.dropConnection()")
    await page.wait_for_function("window.poc.connection !== 'connected'", timeout=5_000)


async def _reconnect(context: BrowserContext, page: Page) -> None:
    await context.set_offline(False)
    await page.wait_for_function("window.poc.connection === 'connected'", timeout=15_000)


@pytest.mark.usefixtures("committed")
async def test_wall_updates_live_and_resumes_after_a_network_drop(
    server: Server,
    browser: Browser,
    shared_data_dir: Path,
    operator_token: str,
    committed_credentials: Credentials,
) -> None:
    submit = committed_credentials
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, "32.75.08.1001")
    place = {"lat": lat, "lon": lon}
    context = await browser.new_context(viewport={"width": 1600, "height": 900}, bypass_csp=True)
    page = await context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    websockets: list[str] = []
    page.on("websocket", lambda ws: websockets.append(ws.url))
    try:
        await _open_live_wall(page, server, operator_token)
        await expect(
            page.locator(".leaflet-overlay-pane path.leaflet-interactive")
        ).not_to_have_count(0)
        await expect(_counter(page, "total")).to_have_text("0")

        first = await _submit(server, submit, place, "Jalan berlubang pertama")
        await expect(_marker(page, first)).to_have_count(1, timeout=LIVE_WITHIN_MS)
        await expect(_counter(page, "total")).to_have_text("1", timeout=LIVE_WITHIN_MS)
        await expect(_counter(page, "RECEIVED")).to_have_text("1", timeout=LIVE_WITHIN_MS)
        await expect(page.locator(f'#newest li[data-ticket="{first}"]')).to_have_count(1)
        assert await page.evaluate("window.poc.connects") == 1

        await _drop(context, page)
        second = await _submit(server, submit, place, "Jalan berlubang kedua")
        third = await _submit(server, submit, place, "Jalan berlubang ketiga")
        await page.wait_for_timeout(1_500)
        assert await page.evaluate("window.poc.connection") != "connected"
        await expect(_marker(page, second)).to_have_count(0)

        await _reconnect(context, page)
        await expect(_marker(page, second)).to_have_count(1, timeout=5_000)
        await expect(_marker(page, third)).to_have_count(1, timeout=5_000)
        await expect(_counter(page, "total")).to_have_text("3", timeout=5_000)
        for ticket in (first, second, third):
            await expect(page.locator(f'#newest li[data-ticket="{ticket}"]')).to_have_count(1)
        assert await page.evaluate("window.poc.connects") >= 2
        # CREATED and ROUTED each: the marker shows on the first of a report's two
        # events, so the second may still be on its way; then none more (no repeat).
        await page.wait_for_function("window.poc.eventsSeen >= 6", timeout=5_000)
        await page.wait_for_timeout(300)
        assert await page.evaluate("window.poc.eventsSeen") == 6
        await expect(page.locator('#dinas-table tr[data-dinas="DBMSDA"] td').nth(1)).to_have_text(
            "3", timeout=5_000
        )

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "poc-page.png"), full_page=True)
        assert page_errors == []
        assert all(url.endswith("/graphql") for url in websockets)
    finally:
        await context.close()


async def test_a_drop_before_any_event_misses_nothing(
    server: Server,
    browser: Browser,
    shared_data_dir: Path,
    operator_token: str,
    committed_credentials: Credentials,
) -> None:
    """A quiet night: the connection drops before the wall received any event,
    reports arrive meanwhile, and all of them appear once it is back."""
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, "32.75.08.1001")
    place = {"lat": lat, "lon": lon}
    context = await browser.new_context(viewport={"width": 1600, "height": 900}, bypass_csp=True)
    page = await context.new_page()
    try:
        await _open_live_wall(page, server, operator_token)
        seen_before = await page.evaluate("window.poc.eventsSeen")

        await _drop(context, page)
        missed = [
            await _submit(server, committed_credentials, place, f"Lampu mati malam {i}")
            for i in range(3)
        ]
        await _reconnect(context, page)
        for ticket in missed:
            await expect(_marker(page, ticket)).to_have_count(1, timeout=5_000)
            await expect(page.locator(f'#newest li[data-ticket="{ticket}"]')).to_have_count(1)
        await page.wait_for_function(f"window.poc.eventsSeen >= {seen_before + 6}", timeout=5_000)
    finally:
        await context.close()


async def test_page_sends_the_staff_token(
    server: Server, browser: Browser, operator_token: str
) -> None:
    context = await browser.new_context(bypass_csp=True)
    page = await context.new_page()
    seen: list[str | None] = []
    page.on(
        "request",
        lambda request: (
            seen.append(request.headers.get("authorization"))
            if request.url.endswith("/graphql")
            else None
        ),
    )
    frames: list[str] = []
    page.on(
        "websocket",
        lambda ws: ws.on("framesent", lambda payload: frames.append(str(payload))),
    )
    try:
        await page.goto(f"http://127.0.0.1:{server.port}/poc")
        # The sign-in form is wired once the reference data has loaded; then the wall
        # asks for a token. A click before that would go nowhere.
        await expect(page.locator("#error")).to_contain_text("token petugas", timeout=20_000)
        await _sign_in(page, "bukan-token")
        await expect(page.locator("#error")).to_contain_text("Token ditolak", timeout=10_000)

        await _sign_in(page, operator_token)
        await page.wait_for_function(
            "window.poc.ready && window.poc.connection === 'connected'", timeout=20_000
        )
        assert f"Bearer {operator_token}" in seen
        inits = [f for f in frames if '"connection_init"' in f]
        assert any(f'"authorization":"Bearer {operator_token}"' in f for f in inits), inits
        # The token survives a reload of the wall.
        await page.reload()
        await page.wait_for_function(
            "window.poc && window.poc.ready && window.poc.connection === 'connected'",
            timeout=20_000,
        )
        assert await page.input_value("#token") == operator_token
    finally:
        await context.close()


async def test_page_config_carries_the_tile_setting(server: Server) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        page = await client.get(f"http://127.0.0.1:{server.port}/poc")
        script = await client.get(f"http://127.0.0.1:{server.port}/poc/assets/poc.js")
    assert page.status_code == 200
    assert '"tileUrl": null' in page.text
    assert 'lang="id"' in page.text
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "img-src 'self' data:;" in policy


@pytest.mark.parametrize(
    ("tile_url", "img_src"),
    [
        ("https://tiles.example/{z}/{x}/{y}.png", "img-src 'self' data: https://tiles.example;"),
        (
            "https://{s}.tile.example:8443/{z}/{x}/{y}.png",
            "img-src 'self' data: https://*.tile.example:8443;",
        ),
        ("https://tiles-{s}.example/{z}/{x}/{y}.png", "img-src 'self' data: https:;"),
    ],
)
def test_the_page_policy_lets_the_tiles_in(tile_url: str, img_src: str) -> None:
    assert img_src in _content_security_policy(tile_url)


# Runs only when the page turns data into markup: an image that fails to load.
HOSTILE = '<img src="x" onerror="window.injected = (window.injected || 0) + 1">'


@pytest.fixture
async def hostile_names(engine: AsyncEngine) -> AsyncIterator[None]:
    """Every kelurahan and kecamatan name of the active set ends in markup, committed
    for the server to read; the names are put back afterwards."""
    suffix = f" {HOSTILE}"
    active = "boundary_set_id = (SELECT id FROM boundary_set WHERE is_active)"
    async with engine.begin() as conn:
        for table in ("kelurahan", "kecamatan"):
            await conn.execute(
                text(f"UPDATE {table} SET name = name || :suffix WHERE {active}"),
                {"suffix": suffix},
            )
    try:
        yield
    finally:
        async with engine.begin() as conn:
            for table in ("kelurahan", "kecamatan"):
                await conn.execute(
                    text(
                        f"UPDATE {table} SET name = left(name, -length(:suffix))"
                        f" WHERE {active} AND right(name, length(:suffix)) = :suffix"
                    ),
                    {"suffix": suffix},
                )


@pytest.mark.usefixtures("committed", "hostile_names")
async def test_names_and_titles_are_shown_as_text_and_run_nothing(
    server: Server,
    browser: Browser,
    shared_data_dir: Path,
    operator_token: str,
    committed_credentials: Credentials,
) -> None:
    lat, lon = bekasi.interior_lat_lon(shared_data_dir, "32.75.08.1001")
    title = f"Jalan rusak {HOSTILE}"
    context = await browser.new_context(viewport={"width": 1600, "height": 900}, bypass_csp=True)
    page = await context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    try:
        await page.goto(f"http://127.0.0.1:{server.port}/poc")
        await expect(page.locator("#error")).to_contain_text("token petugas", timeout=20_000)
        await _sign_in(page, operator_token)
        await page.wait_for_function(
            "window.poc && window.poc.ready && window.poc.connection === 'connected'",
            timeout=20_000,
        )
        ticket = await _submit(server, committed_credentials, {"lat": lat, "lon": lon}, title)
        await expect(_marker(page, ticket)).to_have_count(1, timeout=LIVE_WITHIN_MS)

        # The lists: the title, and the kelurahan name in the line below it.
        line = page.locator(f'#newest li[data-ticket="{ticket}"]')
        await expect(line.locator(".title")).to_have_text(title)
        await expect(line.locator(".meta")).to_contain_text(HOSTILE)
        # The kecamatan filter.
        await expect(page.locator("#filter-kecamatan option").nth(1)).to_contain_text(HOSTILE)
        # The popup of the case's marker.
        await _marker(page, ticket).dispatch_event("click")
        popup = page.locator(".leaflet-popup-content")
        await expect(popup).to_contain_text(title)
        # The tooltip of the kelurahan under the pointer, wherever that is on the map.
        box = await page.locator("#map").bounding_box()
        assert box is not None
        tooltip = page.locator(".leaflet-tooltip")
        for fraction in (0.5, 0.4, 0.6, 0.3, 0.7):
            await page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)
            if await tooltip.count():
                break
        await expect(tooltip).to_contain_text(HOSTILE)

        await page.wait_for_timeout(300)  # time for a failing image to report its error
        assert await page.locator("#map img, .side img, select img").count() == 0
        assert await page.evaluate("window.injected") is None
        assert page_errors == []
    finally:
        await context.close()


async def test_the_wall_works_within_its_content_security_policy(
    server: Server, browser: Browser, operator_token: str
) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    try:
        await page.goto(f"http://127.0.0.1:{server.port}/poc")
        await expect(page.locator("#error")).to_contain_text("token petugas", timeout=20_000)
        await expect(
            page.locator(".leaflet-overlay-pane path.leaflet-interactive")
        ).not_to_have_count(0)
        await _sign_in(page, operator_token)
        await expect(page.locator("#connection")).to_have_attribute(
            "data-state", "connected", timeout=20_000
        )
        await expect(page.locator("#error")).to_be_hidden(timeout=10_000)

        assert refused == []
        assert page_errors == []
    finally:
        await context.close()
