"""The pages a person opens in a browser: the API's docs (/docs) and the operator's console
(/console), served by the API process with every asset from the service itself, so that no
request leaves the host when a page loads (an air-gapped host sees them whole).

The console is static files: a page, one script and one stylesheet; no build step and no
library. The script calls the same JSON API as any other client, with the key the operator
signs in with in the `x-api-key` header: the API decides what a key may see and do, the
console only shows it. The key stays in the tab's sessionStorage, never in a cookie (so no
request carries it unasked: no cross-site request forgery), a URL or a log line.

Safe by construction: the script puts what the API returns on the page as text
(`textContent`), never as HTML, and the Content-Security-Policy allows scripts and styles from
this origin only, so a stored `<script>` or `onerror=` is shown, not run, even if a future
change slipped.

Swagger UI's files come from the swagger-ui-py package (Apache-2.0, its LICENSE beside them);
its start-up script is a file of ours, not an inline one, so /docs keeps the same policy.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from quart import Blueprint, Response, abort, send_from_directory
from quart_schema import hide

STATIC = Path(__file__).parent / "static"
# What the console's page loads: nothing else under /console is served.
CONSOLE_ASSETS = frozenset({"console.js", "console.css", "favicon.svg"})
SWAGGER_ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"})

# Scripts, styles, images and API calls from this origin only; no inline script or style
# element, no plugin, no framing, no form posted anywhere, no <base> rewriting links.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Cross-Origin-Opener-Policy": "same-origin",
}


def swagger_ui_files() -> Path:
    """swagger-ui-py's static folder, found without importing the package (its __init__
    imports its framework handlers and YAML, none of which is used here)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: it serves /docs' assets")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def pages_blueprint(console: bool) -> Blueprint:
    """/docs always; /console unless turned off (MEMORY_CONSOLE_ENABLED=false: then 404)."""
    blueprint = Blueprint("pages", __name__)
    swagger = swagger_ui_files()

    @blueprint.after_request
    async def secure(response: Response) -> Response:
        response.headers.update(PAGE_HEADERS)
        # Pages never cached; assets asked again each time (a 304 when unchanged), so an upgrade
        # never runs an old script beside a new API (their URLs carry no version).
        response.headers["Cache-Control"] = "no-store" if response.mimetype == "text/html" else "no-cache"
        return response

    @blueprint.get("/docs")
    @hide  # pages, not API: left out of /openapi.json
    async def docs() -> Response:
        return await send_from_directory(STATIC, "docs.html")

    @blueprint.get("/docs/assets/<name>")
    @hide  # pages, not API: left out of /openapi.json
    async def docs_asset(name: str) -> Response:
        if name == "LICENSE":  # Swagger UI's licence, read in the browser rather than downloaded
            return await send_from_directory(swagger, name, mimetype="text/plain")
        if name in SWAGGER_ASSETS:
            return await send_from_directory(swagger, name)
        if name == "docs.js":
            return await send_from_directory(STATIC, name)
        abort(404)

    if console:

        @blueprint.get("/console")
        @hide  # pages, not API: left out of /openapi.json
        async def console_page() -> Response:
            return await send_from_directory(STATIC, "console.html")

        @blueprint.get("/console/assets/<name>")
        @hide  # pages, not API: left out of /openapi.json
        async def console_asset(name: str) -> Response:
            if name not in CONSOLE_ASSETS:
                abort(404)
            return await send_from_directory(STATIC, name)

    return blueprint
