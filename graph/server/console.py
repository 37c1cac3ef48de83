"""``GET /console``: the agent console, a few static files from ``graph/console`` served as they are.

No build step and nothing from outside: the page's scripts are ES modules of this folder, and
its Content-Security-Policy lets it load scripts, styles and images from this origin only and
talk to nothing but this origin (``/graphql`` over HTTP and WebSocket). Files are read once,
when the routes are made; each answer carries an ETag, and the browser asks again every time
(``no-cache``), so a new version of a file is never hidden behind an old one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

#: the folder, inside the ``graph`` package, the console's files live in
FOLDER = "console"
#: where the console is served
PATH = "/console"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}

#: this origin only, for everything; 'self' also covers ws:// and wss:// to this host (CSP 3)
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class Asset:
    """One file of the console, as it is served."""

    body: bytes
    media_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Every file of the console folder whose kind is served, by file name."""
    folder = resources.files("graph").joinpath(FOLDER)
    assets = {}
    for entry in folder.iterdir():
        media_type = MEDIA_TYPES.get(_suffix(entry.name))
        if media_type is None or not entry.is_file():
            continue
        body = entry.read_bytes()
        assets[entry.name] = Asset(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
    return assets


def _suffix(name: str) -> str:
    return name[name.rfind(".") :] if "." in name else ""


def answer(request: Request, asset: Asset) -> Response:
    """The file, or 304 where the browser already holds this version of it."""
    headers = {**HEADERS, "ETag": asset.etag}
    if asset.etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def console_routes() -> list[BaseRoute]:
    """The routes of the console: the page at ``/console`` (and ``/console/``), its files below."""
    assets = load_assets()
    page = assets["index.html"]

    async def index(request: Request) -> Response:
        return answer(request, page)

    async def asset(request: Request) -> Response:
        found = assets.get(request.path_params["name"])
        if found is None:
            return PlainTextResponse("Not Found", status_code=404, headers=HEADERS)
        return answer(request, found)

    return [
        Route(PATH, index, methods=["GET"]),
        Route(f"{PATH}/", index, methods=["GET"]),
        Route(f"{PATH}/{{name:str}}", asset, methods=["GET"]),
    ]


def graphiql_asset_hosts() -> list[str]:
    """The hosts Strawberry's GraphiQL page loads its scripts and styles from (a public CDN:
    on a host without the internet GraphiQL stays on "Loading…"; the console does not)."""
    page = resources.files("strawberry").joinpath("static/graphiql.html").read_text()
    return sorted(set(re.findall(r"""(?:src|href)=["']https://([^/"']+)/""", page)))


def addresses(host: str, port: int, *, graphiql: bool = True) -> list[str]:
    """What ``serve`` says on start: where the console is, and GraphiQL where it is on."""
    if host in ("", "0.0.0.0", "::"):  # every interface: this machine's own address reaches it
        host = "127.0.0.1"
    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    lines = [f"agent console at {base}{PATH}"]
    if graphiql:
        lines.append(
            f"GraphiQL at {base}/graphql (its scripts and styles come from {', '.join(graphiql_asset_hosts())})"
        )
    return lines
