"""The built dashboard (``web/dashboard/dist``, a Vite build), served by the gateway itself, so a
browser needs nothing but the gateway's URL (one origin: no CORS, no second server).

``GET /`` answers ``index.html`` with ``Cache-Control: no-cache`` (a new build shows at once);
``GET /assets/{name}`` the build's assets, whose names Vite hashes, so they are cached for a year
as immutable; ``GET /{name}`` other top-level files (``favicon.svg``), revalidated like the index.
Only regular files directly inside those two folders are served: a name with a slash, a leading
dot or ``..`` is not found, and so is a symlink leading elsewhere. The files need no token (they
hold no data; every API call they make does). They are not API operations: ``NON_API_ROUTES``
lists them, and the OpenAPI document leaves them out. Without ``index.html`` (the dashboard not
built) ``GET /`` is a 503 saying how to build it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Final

from aiohttp import web

from .errors import ApiError, NotFound
from .keys import CONFIG

__all__ = ["NON_API_ROUTES", "DashboardNotBuilt", "content_type", "install"]

log = logging.getLogger("stellarops.web")

# (method, path as the router formats it): the routes that are not in the OpenAPI document.
NON_API_ROUTES: Final = frozenset({("GET", "/"), ("GET", "/assets/{name}"), ("GET", "/{name}")})

NO_CACHE: Final = "no-cache"
IMMUTABLE: Final = "public, max-age=31536000, immutable"
# Explicit, not mimetypes: the system's tables differ (.js as application/javascript or absent
# .woff2), and a browser refuses a module script or a stylesheet served with the wrong type.
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".txt": "text/plain; charset=utf-8",
    ".wasm": "application/wasm",
}
_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@~+-]{0,254}")  # no slash, no leading dot
_TOP_LEVEL: Final = r"/{name:[A-Za-z0-9_][A-Za-z0-9_.@~+-]*\.[A-Za-z0-9]+}"  # files only: /nothing stays a 404


class DashboardNotBuilt(ApiError):
    status, code = 503, "dashboard_not_built"


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def _file(directory: Path, name: str) -> Path | None:
    """``directory/name`` when it is a regular file directly inside ``directory``, else None."""
    if not _NAME.fullmatch(name) or ".." in name:
        return None
    try:
        path = (directory / name).resolve(strict=True)
        inside = path.parent == directory.resolve(strict=True)
    except (OSError, RuntimeError):  # missing, unreadable, a symlink loop
        return None
    return path if inside and path.is_file() else None


def _send(path: Path, cache_control: str) -> web.FileResponse:
    headers = {"Content-Type": content_type(path.name), "Cache-Control": cache_control, "X-Content-Type-Options": "nosniff"}
    return web.FileResponse(path, headers=headers)


async def index(request: web.Request) -> web.StreamResponse:
    path = _file(request.app[CONFIG].dashboard_dir, "index.html")
    if path is None:
        raise DashboardNotBuilt(
            "the dashboard is not built: run `make run` (which builds it), or `npm ci && npm run build` in web/dashboard"
        )
    return _send(path, NO_CACHE)


async def asset(request: web.Request) -> web.StreamResponse:
    path = _file(request.app[CONFIG].dashboard_dir / "assets", request.match_info["name"])
    if path is None:
        raise NotFound(f"no such resource: {request.path}")
    return _send(path, IMMUTABLE)


async def top_level(request: web.Request) -> web.StreamResponse:
    path = _file(request.app[CONFIG].dashboard_dir, request.match_info["name"])
    if path is None:
        raise NotFound(f"no such resource: {request.path}")
    return _send(path, NO_CACHE)


def install(app: web.Application) -> None:
    """Add the dashboard's routes (after the API's: ``/{name}`` must not shadow ``/healthz``)."""
    directory = app[CONFIG].dashboard_dir
    if (directory / "index.html").is_file():
        log.info("dashboard: serving %s", directory)
    else:
        log.warning("dashboard: %s has no index.html (not built): GET / answers 503", directory)
    app.router.add_get("/", index)
    app.router.add_get("/assets/{name}", asset)
    app.router.add_get(_TOP_LEVEL, top_level)
