"""`GET /docs`: Swagger UI over `/openapi.json`. Its script and styles come from the installed
swagger-ui-py package and are served here, so the page needs no CDN and works offline."""

import functools
from importlib import resources

from aiohttp import web

from hookflow_shared.errors import NotFound

PUBLIC = frozenset({"/healthz", "/openapi.json", "/docs"})
"""Paths answered without the admin token (with the page's assets under /docs/)."""

ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}
"""The files of the package's static folder that the page loads, and their media types."""

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Hookflow config API</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
    });
  </script>
</body>
</html>
"""


def is_docs_file(path: str) -> bool:
    """Answered without the token: exactly these paths and the page's assets, nothing that
    merely starts like them."""
    return path in PUBLIC or path.removeprefix("/docs/") in ASSETS


async def docs_page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def docs_asset(request: web.Request) -> web.Response:
    name = request.match_info["asset"]
    if name not in ASSETS:  # not reached without the token (is_docs_file): for a signed-in typo
        raise NotFound(f"no asset {name!r}; the page loads {', '.join(sorted(ASSETS))}")
    return web.Response(
        body=_read(name),
        content_type=ASSETS[name],
        headers={"Cache-Control": "public, max-age=86400"},
    )


@functools.cache
def _read(name: str) -> bytes:
    return (resources.files("swagger_ui") / "static" / name).read_bytes()
