"""/docs and /console as HTTP resources: served from the process (no CDN), with the headers
that make them safe, only the files they load, out of the API's document, and the console
off when the setting says so. tests/browser opens them in a real browser."""

from __future__ import annotations

import re

import pytest

from entrypoints.console import STATIC
from tests.unit.conftest import ACME_KEY

PAGES = ["/docs", "/console"]
ASSETS = [
    "/docs/assets/swagger-ui-bundle.js",
    "/docs/assets/swagger-ui.css",
    "/docs/assets/docs.js",
    "/console/assets/console.js",
    "/console/assets/console.css",
    "/console/assets/favicon.svg",
]


@pytest.mark.parametrize("path", PAGES + ASSETS)
async def test_pages_and_their_assets_are_served_with_a_strict_policy(client, path):
    response = await client.get(path)
    assert response.status_code == 200, path
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "'unsafe-inline'" not in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert len(await response.get_data()) > 100


@pytest.mark.parametrize("path", PAGES)
async def test_a_page_loads_nothing_from_another_host_and_has_no_inline_script(client, path):
    html = (await (await client.get(path)).get_data()).decode()
    assert re.findall(r"""(?:src|href)=["'](?:https?:)?//""", html) == []
    assert re.findall(r"<script(?![^>]*\ssrc=)[^>]*>", html) == []  # every script is a file
    assert (await client.get(path)).headers["Cache-Control"] == "no-store"


def test_no_file_of_the_console_writes_html_from_data():
    script = (STATIC / "console.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink


@pytest.mark.parametrize(
    "path",
    [
        "/console/assets/console.html",  # the page is /console, not an asset
        "/console/assets/..%2f__init__.py",
        "/console/assets/%2e%2e%2f%2e%2e%2fconfig%2fsettings.py",
        "/docs/assets/swagger-editor-bundle.js",  # in the package, not what /docs loads
        "/docs/assets/..%2fcore.py",
        "/docs/assets/console.js",
        "/redocs",
        "/scalar",
    ],
)
async def test_nothing_else_is_served(client, path):
    assert (await client.get(path)).status_code == 404


async def test_pages_are_not_in_the_api_document(client):
    spec = await (await client.get("/openapi.json")).get_json()
    assert not [p for p in spec["paths"] if p.startswith(("/docs", "/console"))]


async def test_the_console_calls_the_api_with_the_key_header_and_no_cookie(client):
    """The console is a client of the API: the key goes in x-api-key (a same-origin fetch
    from the page), and the API sets no cookie for it to lean on."""
    response = await client.get("/v1/conversations/c1/messages?tenant_id=acme", headers={"x-api-key": ACME_KEY})
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    script = (STATIC / "console.js").read_text()
    assert '"x-api-key"' in script and 'credentials: "omit"' in script and "document.cookie" not in script


@pytest.fixture
def console_off(settings):
    settings.console_enabled = False
    return settings


async def test_the_console_can_be_turned_off(console_off, client):
    assert (await client.get("/console")).status_code == 404
    assert (await client.get("/console/assets/console.js")).status_code == 404
    assert (await client.get("/docs")).status_code == 200  # the docs stay


async def test_pages_are_never_cached_and_assets_are_asked_again(client):
    """An upgrade must not run an old script beside a new API: asset URLs carry no version."""
    assert (await client.get("/console")).headers["Cache-Control"] == "no-store"
    for asset in ASSETS:
        assert (await client.get(asset)).headers["Cache-Control"] == "no-cache", asset


async def test_swagger_uis_licence_reads_as_text(client):
    licence = await client.get("/docs/assets/LICENSE")
    assert licence.status_code == 200 and licence.mimetype == "text/plain"
    assert b"Apache License" in await licence.get_data()
