"""The admin console: a few static files (no build step, nothing from a CDN) served at `/`.

The page and its assets need no token: they hold nothing secret. The page asks for the admin
token and sends it with each call to the same REST API as any other client. Its Content
Security Policy allows only this origin's scripts, styles and API, so a value shown from a
webhook (a captured header, a body) can never run as code.
"""

from pathlib import Path

from aiohttp import web

from hookflow_shared.errors import NotFound

FOLDER = Path(__file__).parent / "static"
PREFIX = "/console/"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


def is_console_file(path: str) -> bool:
    """The console's own files: served without the token."""
    return path == "/" or path.startswith(PREFIX)


def add_console(app: web.Application) -> None:
    files = {path.name: path for path in FOLDER.iterdir() if path.suffix in _TYPES}

    async def page(request: web.Request) -> web.Response:
        return _file(files["index.html"])

    async def asset(request: web.Request) -> web.Response:
        found = files.get(request.match_info["name"])
        if found is None:
            raise NotFound(f"no console file {request.match_info['name']!r}")
        return _file(found)

    app.router.add_get("/", page)
    app.router.add_get(PREFIX + "{name}", asset)


def _file(path: Path) -> web.Response:
    charset = "utf-8" if path.suffix != ".png" else None
    return web.Response(
        body=path.read_bytes(),
        content_type=_TYPES[path.suffix],
        charset=charset,
        headers=HEADERS,
    )
